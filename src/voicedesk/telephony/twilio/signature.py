"""``X-Twilio-Signature`` validation and short-lived call tokens, written here (no SDK call).

Webhook signatures (protocols.md §3, matching twilio-python's ``RequestValidator``)::

    s   = url                                   # as Twilio requested it, query included
    s  += name + value  for each distinct form field name (sorted),
                         for each of its distinct values (sorted)
    sig = base64(HMAC-SHA1(auth_token, s))      # HMAC-SHA256 with a SharedKey, see below

* The URL is the one Twilio was configured with, rebuilt as ``public_url + path + raw query``
  (``signed_url``); never from the local request, which a TLS-terminating proxy changed.
* Twilio is inconsistent about explicit default ports, so a signature is accepted over the
  URL with the port removed *or* with the default port added (``:443``/``:80``; also for
  ``wss``/``ws``, where the SDK wrongly adds ``:80`` to ``wss``).
* JSON bodies: Twilio puts ``bodySHA256=<hex sha256(body)>`` into the query; the body hash
  must match and the signature covers the URL alone.
* Comparisons are constant-time (``hmac.compare_digest``). Anything malformed (missing header,
  non-ASCII signature, file uploads in the form) fails validation rather than raising.
* Newer Twilio accounts can sign with a SharedKey and announce
  ``X-Twilio-Webhooks-Signature-Settings: key=…,algorithm=HMAC_SHA256``; pass that header to
  ``signature_algorithm`` and the SharedKey secret as ``token``.

Call tokens (``issue_call_token``/``verify_call_token``) gate the media WebSocket: the
incoming-call webhook puts one into ``<Parameter name="token">`` and the ``start`` message
brings it back. A token is ``v1.<payload>.<mac>`` in URL-safe base64 (well under Twilio's
500-character parameter limit), HMAC-SHA256 over a domain-separated payload holding the call
id, tenant id, expiry and a random token id. Expiry is checked here; *single use* needs state
and is the caller's job, with a store shaped like::

    class UsedTokens(Protocol):
        async def claim(self, token_id: str, expires_at: datetime) -> bool:
            '''Atomically record ``token_id``; False if it was already claimed.
            Entries may be forgotten after ``expires_at`` (the token is dead anyway).'''

(a dict with expiry sweep on one instance; ``INSERT … ON CONFLICT DO NOTHING`` on a
``used_call_tokens`` table in the scaled deployment).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from voicedesk.domain.errors import AuthenticationError

SIGNATURE_HEADER: Final = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER: Final = "X-Twilio-Webhooks-Signature-Settings"
HMAC_SHA1: Final = "HMAC_SHA1"
HMAC_SHA256: Final = "HMAC_SHA256"
_HASHES: Final = {HMAC_SHA1: hashlib.sha1, HMAC_SHA256: hashlib.sha256}
_DEFAULT_PORTS: Final = {"https": "443", "wss": "443", "http": "80", "ws": "80"}


@runtime_checkable
class _HasMultiItems(Protocol):  # Starlette FormData / ImmutableMultiDict
    def multi_items(self) -> list[tuple[str, Any]]: ...


@runtime_checkable
class _HasGetlist(Protocol):  # Django QueryDict, Werkzeug MultiDict
    def __iter__(self) -> Iterator[str]: ...
    def getlist(self, key: str) -> list[Any]: ...


@runtime_checkable
class _HasGetall(Protocol):  # multidict.MultiDict (aiohttp)
    def __iter__(self) -> Iterator[str]: ...
    def getall(self, key: str) -> list[Any]: ...


Params = (
    Mapping[str, str]
    | Mapping[str, Sequence[str]]
    | Iterable[tuple[str, str]]
    | _HasMultiItems
    | _HasGetlist
    | _HasGetall
)
"""Form fields: a dict (values may be lists for repeated fields), ``(name, value)`` pairs
(``urllib.parse.parse_qsl``), Starlette ``FormData``, or any ``getlist``/``getall`` multidict."""


def _pairs(params: Params | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    raw: Iterable[tuple[Any, Any]]
    if isinstance(params, _HasMultiItems):
        raw = params.multi_items()
    elif isinstance(params, _HasGetlist):
        raw = [(k, v) for k in params for v in params.getlist(k)]
    elif isinstance(params, _HasGetall):
        raw = [(k, v) for k in params for v in params.getall(k)]
    elif isinstance(params, Mapping):
        raw = [
            (k, v)
            for k, values in params.items()
            for v in ([values] if isinstance(values, str) else values)
        ]
    else:
        raw = params
    pairs = list(raw)
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("form fields must be strings (a file upload is never a Twilio webhook)")
    return pairs


def _signing_string(url: str, params: Params | None) -> str:
    by_name: dict[str, set[str]] = {}
    for name, value in _pairs(params):
        by_name.setdefault(name, set()).add(value)
    parts = [url]
    for name in sorted(by_name):
        parts.extend(name + value for value in sorted(by_name[name]))
    return "".join(parts)


def compute_signature(url: str, params: Params | None, token: str, *, algorithm: str = HMAC_SHA1) -> str:
    """The signature Twilio sends for ``url`` and form ``params`` (no port juggling)."""
    hash_fn = _HASHES.get(algorithm.upper())
    if hash_fn is None:
        raise ValueError(f"unsupported Twilio signature algorithm {algorithm!r}")
    mac = hmac.new(token.encode(), _signing_string(url, params).encode(), hash_fn)
    return base64.b64encode(mac.digest()).decode("ascii")


def sign(url: str, params: Params | None, token: str) -> str:
    """Sign like Twilio does (HMAC-SHA1 with the auth token): for emulators and tests."""
    return compute_signature(url, params, token)


def body_sha256(body: bytes | str) -> str:
    """Hex SHA-256 that Twilio puts into ``bodySHA256`` for JSON webhooks."""
    data = body.encode() if isinstance(body, str) else body
    return hashlib.sha256(data).hexdigest()


def signature_algorithm(settings_header: str | None) -> str:
    """The algorithm named in ``X-Twilio-Webhooks-Signature-Settings``; HMAC_SHA1 if absent."""
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return HMAC_SHA1


def _split_netloc(url: str) -> tuple[str, str, str] | None:
    """``url`` -> (text before the host, host[:port], text after); None if not absolute."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        return None
    end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            end = min(end, index)
    return scheme + "://", rest[:end], rest[end:]


def port_variants(url: str) -> tuple[str, str]:
    """(url without an explicit port, url with the scheme's default port) — both are tried.

    Only the authority changes; path and query stay byte-for-byte as given.
    """
    split = _split_netloc(url)
    if split is None:
        return url, url
    prefix, netloc, rest = split
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal
        close = hostport.find("]")
        host, port_part = hostport[: close + 1], hostport[close + 1 :]
    else:
        host, colon, port = hostport.partition(":")
        port_part = colon + port
    scheme = prefix[:-3].lower()
    default = _DEFAULT_PORTS.get(scheme, "80")
    with_port = host + (port_part if port_part else ":" + default)
    return (
        prefix + userinfo + at + host + rest,
        prefix + userinfo + at + with_port + rest,
    )


def validate_signature(
    url: str,
    params: Params | None,
    signature: str | None,
    token: str,
    *,
    body: bytes | str | None = None,
    algorithm: str = HMAC_SHA1,
) -> bool:
    """True if ``signature`` is Twilio's for this request.

    ``url`` is the public URL Twilio requested (``signed_url``), ``params`` the form fields of
    a form POST (None for GET), ``body`` the raw body of a JSON webhook (the URL then carries
    ``bodySHA256``; ``params`` are ignored).
    """
    if not signature or algorithm.upper() not in _HASHES:
        return False
    url = url.partition("#")[0]  # fragments (#rc=…) are Twilio options, never signed
    body_ok = True
    if body is not None:
        hashes = parse_qs(urlsplit(url).query).get("bodySHA256")
        if not hashes:
            return False
        body_ok = hmac.compare_digest(body_sha256(body).encode(), hashes[0].encode())
        params = None
    expected = signature.encode()
    matched = False
    try:
        for variant in port_variants(url):
            computed = compute_signature(variant, params, token, algorithm=algorithm).encode()
            matched |= hmac.compare_digest(computed, expected)
    except TypeError:  # a non-string form field
        return False
    return body_ok and matched


def check_signature(
    url: str,
    params: Params | None,
    signature: str | None,
    token: str,
    *,
    body: bytes | str | None = None,
    algorithm: str = HMAC_SHA1,
) -> None:
    """``validate_signature`` that raises ``AuthenticationError`` (code ``unauthenticated``)."""
    if not validate_signature(url, params, signature, token, body=body, algorithm=algorithm):
        raise AuthenticationError("Twilio signature missing or invalid", reason="bad_signature")


def signed_url(public_url: str, path: str | bytes, query: str | bytes = b"") -> str:
    """The URL Twilio signed: configured public base + request path + raw query string.

    Pass ASGI ``scope["raw_path"]`` (or ``scope["path"]``) and ``scope["query_string"]``
    untouched; bytes are decoded as Latin-1 like ASGI does.
    """
    path_s = path.decode("latin-1") if isinstance(path, bytes) else path
    query_s = query.decode("latin-1") if isinstance(query, bytes) else query
    base = public_url.rstrip("/")
    if path_s and not path_s.startswith("/"):
        path_s = "/" + path_s
    return base + path_s + ("?" + query_s if query_s else "")


def websocket_url(http_url: str) -> str:
    """``https://…`` -> ``wss://…`` (``http`` -> ``ws``): Twilio signs the media-stream
    handshake over the ``wss`` URL while the server sees ``https``."""
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://") :]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://") :]
    return http_url


# --- call tokens ----------------------------------------------------------------------
_FORMAT_VERSION: Final = "v1"
_TOKEN_CONTEXT: Final = b"voicedesk/twilio-call-token/v1\x00"


@dataclass(frozen=True)
class CallToken:
    """A verified call token; ``token_id`` is what a ``UsedTokens`` store claims."""

    call_id: str
    tenant_id: str
    expires_at: datetime
    token_id: str


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, signed: str) -> bytes:
    return hmac.new(secret, _TOKEN_CONTEXT + signed.encode("ascii"), hashlib.sha256).digest()


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise RuntimeError("call tokens need a timezone-aware 'now' (use datetime.now(UTC))")
    return now


def issue_call_token(
    secret: bytes, call_id: str, tenant_id: str, ttl_s: float, now: datetime
) -> str:
    """A URL-safe token for one media stream of ``call_id``, valid ``ttl_s`` seconds from ``now``."""
    if len(secret) < 16:
        raise RuntimeError("call-token secret must be at least 16 bytes")
    expires = int((_aware(now) + timedelta(seconds=ttl_s)).timestamp())
    payload = json.dumps(
        {"c": call_id, "t": tenant_id, "e": expires, "n": _b64e(secrets.token_bytes(12))},
        separators=(",", ":"),
    ).encode()
    signed = f"{_FORMAT_VERSION}.{_b64e(payload)}"
    return f"{signed}.{_b64e(_mac(secret, signed))}"


def verify_call_token(
    secret: bytes | Sequence[bytes],
    token: str | None,
    now: datetime,
    *,
    call_id: str | None = None,
) -> CallToken:
    """Check MAC and expiry (and ``call_id`` if given); raise ``AuthenticationError`` otherwise.

    ``secret`` may be several keys (newest first) to rotate without dropping live calls.
    Single use is not checked here: claim ``token_id`` in a ``UsedTokens`` store.
    """
    keys = [secret] if isinstance(secret, bytes) else list(secret)
    fail = AuthenticationError("call token missing or invalid", reason="bad_call_token")
    if not token or len(token) > 1024 or not token.isascii():
        raise fail
    version, _, rest = token.partition(".")
    payload_b64, _, mac_b64 = rest.partition(".")
    if version != _FORMAT_VERSION or not payload_b64 or not mac_b64:
        raise fail
    signed = f"{version}.{payload_b64}"
    # Compare the canonical text form: no lenient base64 decoding of attacker input.
    if not any(hmac.compare_digest(_b64e(_mac(key, signed)).encode(), mac_b64.encode()) for key in keys):
        raise fail
    try:
        claims = json.loads(_b64d(payload_b64))
        token_call, tenant, expires, nonce = claims["c"], claims["t"], claims["e"], claims["n"]
    except (ValueError, KeyError, TypeError):
        raise fail from None
    if not (isinstance(token_call, str) and isinstance(tenant, str) and isinstance(nonce, str)):
        raise fail
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise fail
    if _aware(now).timestamp() >= expires:
        raise AuthenticationError("call token expired", reason="expired_call_token")
    if call_id is not None and not hmac.compare_digest(call_id.encode(), token_call.encode()):
        raise fail
    return CallToken(
        call_id=token_call,
        tenant_id=tenant,
        expires_at=datetime.fromtimestamp(expires, tz=UTC),
        token_id=nonce,
    )
