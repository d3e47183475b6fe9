"""Twilio REST call control (redirect, transfer, hang-up) and SMS, on ``httpx.AsyncClient``.

Why not the official SDK's client: it is synchronous (``requests``), so every call-control
request from the media path would need a thread hop, and its exceptions would still need
translating. These are four form POSTs; ``httpx`` gives us async I/O on the call's own event
loop, timeouts per request, and ``MockTransport``/a fake server as test seams. The SDK is
still used for TwiML (``twiml.py``) and, in tests, to cross-check signatures.

Every failure leaves this module as ``ProviderError(provider="twilio", category=…)``::

    httpx.TimeoutException            -> TIMEOUT       (transient)
    httpx.TransportError (connect, …) -> NETWORK       (transient)
    HTTP 408                          -> TIMEOUT       (transient)
    HTTP 429                          -> RATE_LIMITED  (transient)
    HTTP 5xx                          -> SERVER        (transient)
    HTTP 401 / 403                    -> AUTH          (permanent)
    HTTP 404                          -> NOT_FOUND     (permanent)
    other HTTP 4xx                    -> BAD_REQUEST   (permanent)
    2xx with a body that is not JSON  -> SERVER        (transient)
    any other httpx.HTTPError         -> NETWORK       (transient)

``ProviderError.fields`` carry ``status`` and Twilio's numeric ``twilio_code`` but never
Twilio's ``message`` text, which can quote phone numbers. Retrying is the caller's choice
(``hangup`` is idempotent; ``send_sms`` is not).

Twilio is a processor of personal data (caller numbers, SMS text): see ``PROCESSOR``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from voicedesk.domain.errors import ErrorCategory, ProviderError

DEFAULT_BASE_URL: Final = "https://api.twilio.com"
API_VERSION: Final = "2010-04-01"
PROVIDER: Final = "twilio"
CALL_NOT_FOUND: Final = 20404
_MESSAGING_SERVICE: Final = re.compile(r"MG[0-9a-fA-F]{32}")

PROCESSOR: Final[Mapping[str, object]] = {
    "name": "Twilio Inc.",
    "location": "USA (US1) or Ireland (IE1 region), per account configuration",
    "data_categories": ("phone numbers", "call audio", "call metadata", "SMS content"),
    "purpose": "telephony: carrying calls, call control, SMS confirmations",
}
"""What this adapter sends out, for the processor registry (DESIGN.md)."""


def twilio_base_url(
    base_url: str = DEFAULT_BASE_URL, *, region: str | None = None, edge: str | None = None
) -> str:
    """Base URL for a Twilio region/edge, like twilio-python's ``get_hostname``.

    ``region="ie1", edge="dublin"`` -> ``https://api.dublin.ie1.twilio.com``; region only ->
    ``api.ie1.twilio.com``; edge only -> region ``us1``. An explicit region/edge overrides
    one already in ``base_url``; with neither, ``base_url`` is returned unchanged (so a fake
    server's ``http://127.0.0.1:PORT`` passes through).
    """
    if not region and not edge:
        return base_url.rstrip("/")
    parts = urlsplit(base_url)
    pieces = parts.netloc.split(".")
    prefix, suffix = pieces[0], ".".join(pieces[-2:])
    url_region: str | None = None
    url_edge: str | None = None
    if len(pieces) == 4:  # product.region.twilio.com
        url_region = pieces[1]
    elif len(pieces) == 5:  # product.edge.region.twilio.com
        url_edge, url_region = pieces[1], pieces[2]
    final_edge = edge or url_edge
    final_region = region or url_region or ("us1" if final_edge else None)
    netloc = ".".join(p for p in (prefix, final_edge, final_region, suffix) if p)
    return urlunsplit(parts._replace(netloc=netloc)).rstrip("/")


@dataclass(frozen=True)
class CallUpdated:
    """Twilio's view of a call after an update (``status`` e.g. ``in-progress``, ``completed``)."""

    sid: str
    status: str


@dataclass(frozen=True)
class MessageQueued:
    """An accepted SMS (``status`` usually ``queued``, ``accepted`` with a Messaging Service)."""

    sid: str
    status: str


def _category_for_status(status: int) -> ErrorCategory:
    if status in (401, 403):
        return ErrorCategory.AUTH
    if status == 404:
        return ErrorCategory.NOT_FOUND
    if status == 408:
        return ErrorCategory.TIMEOUT
    if status == 429:
        return ErrorCategory.RATE_LIMITED
    if status >= 500:
        return ErrorCategory.SERVER
    return ErrorCategory.BAD_REQUEST


def _twilio_code(response: httpx.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def error_from_response(response: httpx.Response, operation: str) -> ProviderError:
    """A non-2xx Twilio response as ``ProviderError`` (see the module doc for the mapping)."""
    category = _category_for_status(response.status_code)
    code = _twilio_code(response)
    return ProviderError(
        f"Twilio {operation} failed with HTTP {response.status_code}",
        category=category,
        provider=PROVIDER,
        status=response.status_code,
        twilio_code=code,
        operation=operation,
    )


def error_from_exception(exc: httpx.HTTPError, operation: str) -> ProviderError:
    """An ``httpx`` exception as ``ProviderError``; raise it ``from exc``."""
    if isinstance(exc, httpx.TimeoutException):
        category = ErrorCategory.TIMEOUT
    elif isinstance(exc, httpx.HTTPStatusError):
        return error_from_response(exc.response, operation)
    else:
        category = ErrorCategory.NETWORK
    return ProviderError(
        f"Twilio {operation} failed: {type(exc).__name__}",
        category=category,
        provider=PROVIDER,
        operation=operation,
    )


class TwilioCallControl:
    """REST control of live calls and SMS for one Twilio account.

    Use as ``async with TwilioCallControl(sid, token) as twilio: …`` or call ``aclose()``.
    ``transport`` is the test seam (``httpx.MockTransport``); ``base_url`` points at a fake.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        region: str | None = None,
        edge: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.base_url = twilio_base_url(base_url, region=region, edge=edge)
        self._client = httpx.AsyncClient(
            base_url=f"{self.base_url}/{API_VERSION}/Accounts/{account_sid}",
            auth=httpx.BasicAuth(account_sid, auth_token),
            timeout=timeout_s,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "voicedesk"},
            follow_redirects=False,
            trust_env=False,
        )

    async def __aenter__(self) -> TwilioCallControl:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, form: Mapping[str, str], operation: str) -> dict[str, Any]:
        try:
            response = await self._client.post(path, data=dict(form))
        except httpx.HTTPError as exc:
            raise error_from_exception(exc, operation) from exc
        if not response.is_success:
            raise error_from_response(response, operation)
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderError(
                f"Twilio {operation} answered with a body that is not JSON",
                category=ErrorCategory.SERVER, provider=PROVIDER, operation=operation,
                status=response.status_code,
            ) from exc
        if not isinstance(body, dict):
            raise ProviderError(
                f"Twilio {operation} answered with unexpected JSON",
                category=ErrorCategory.SERVER, provider=PROVIDER, operation=operation,
                status=response.status_code,
            )
        return body

    async def _update_call(self, call_sid: str, form: Mapping[str, str], operation: str) -> CallUpdated:
        body = await self._post(f"/Calls/{call_sid}.json", form, operation)
        return CallUpdated(sid=str(body.get("sid", call_sid)), status=str(body.get("status", "")))

    async def update_call_twiml(self, call_sid: str, twiml: str) -> CallUpdated:
        """Replace what the live call is doing with ``twiml`` (transfer: a ``<Dial>``)."""
        return await self._update_call(call_sid, {"Twiml": twiml}, "update_call")

    async def redirect(self, call_sid: str, url: str, method: str = "POST") -> CallUpdated:
        """Make the live call fetch new TwiML from ``url``."""
        return await self._update_call(call_sid, {"Url": url, "Method": method}, "redirect_call")

    async def hangup(self, call_sid: str) -> bool:
        """End the call; True if it was ended now, False if it was already over.

        Idempotent: Twilio's 20404 (call unknown or finished) counts as done.
        """
        try:
            await self._update_call(call_sid, {"Status": "completed"}, "hangup_call")
        except ProviderError as exc:
            if exc.fields.get("twilio_code") == CALL_NOT_FOUND:
                return False
            raise
        return True

    async def send_sms(
        self, to: str, from_: str, body: str, status_callback: str | None = None
    ) -> MessageQueued:
        """Queue an SMS via the Messages API; ``from_`` is a number, sender id or ``MG…`` service."""
        form = {"To": to, "Body": body}
        form["MessagingServiceSid" if _MESSAGING_SERVICE.fullmatch(from_) else "From"] = from_
        if status_callback:
            form["StatusCallback"] = status_callback
        reply = await self._post("/Messages.json", form, "send_sms")
        sid = reply.get("sid")
        if not isinstance(sid, str):
            raise ProviderError(
                "Twilio send_sms answered without a message sid",
                category=ErrorCategory.SERVER, provider=PROVIDER, operation="send_sms",
            )
        return MessageQueued(sid=sid, status=str(reply.get("status", "")))
