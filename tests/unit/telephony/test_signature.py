from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest
from starlette.datastructures import FormData, UploadFile
from twilio.request_validator import RequestValidator

from voicedesk.domain.errors import AuthenticationError
from voicedesk.telephony.twilio.signature import (
    CallToken,
    body_sha256,
    check_signature,
    compute_signature,
    issue_call_token,
    port_variants,
    sign,
    signature_algorithm,
    signed_url,
    validate_signature,
    verify_call_token,
    websocket_url,
)

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
BODY = '{"property": "value", "boolean": true}'
BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"


class GetlistDict:
    """A Django/Werkzeug-style multidict, as the SDK's validator understands them."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self.pairs))

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self.pairs if k == key]


# --- the SDK's test vectors (protocols.md §3) ----------------------------------------------
def test_sdk_vector_form_params() -> None:
    assert compute_signature(URL, PARAMS, TOKEN) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert sign(URL, PARAMS, TOKEN) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_sdk_vector_explicit_port() -> None:
    assert compute_signature("https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, TOKEN) == (
        "kvajT1Ptam85bY51eRf/AJRuM3w="
    )


@pytest.mark.req("R-10.3")
def test_both_port_variants_are_accepted_for_either_url() -> None:
    for url in (URL, "https://mycompany.com:443/myapp.php?foo=1&bar=2"):
        assert validate_signature(url, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TOKEN)
        assert validate_signature(url, PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=", TOKEN)


def test_any_explicit_port_is_also_tried_without_it_like_the_sdk() -> None:
    url = "https://mycompany.com:8443/myapp.php?foo=1&bar=2"
    assert RequestValidator(TOKEN).validate(url, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert validate_signature(url, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TOKEN)


def test_sdk_vector_json_body() -> None:
    assert body_sha256(BODY) == BODY_HASH
    url = f"{URL}&bodySHA256={BODY_HASH}"
    assert compute_signature(url, None, TOKEN) == "a9nBmqA0ju/hNViExpshrM61xv4="
    assert validate_signature(url, None, "a9nBmqA0ju/hNViExpshrM61xv4=", TOKEN, body=BODY)
    assert validate_signature(url, None, "a9nBmqA0ju/hNViExpshrM61xv4=", TOKEN, body=BODY.encode())


@pytest.mark.req("R-10.3")
def test_json_body_tampered_or_without_hash_is_refused() -> None:
    url = f"{URL}&bodySHA256={BODY_HASH}"
    assert not validate_signature(url, None, "a9nBmqA0ju/hNViExpshrM61xv4=", TOKEN, body=BODY + " ")
    assert not validate_signature(URL, None, "a9nBmqA0ju/hNViExpshrM61xv4=", TOKEN, body=BODY)


def test_sdk_vector_multi_valued_params() -> None:
    pairs = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"),
             ("Digits", "1234")]
    expected = "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    assert compute_signature(URL, pairs, TOKEN) == expected
    assert compute_signature(URL, GetlistDict(pairs), TOKEN) == expected
    assert compute_signature(URL, FormData(list[tuple[str, str | UploadFile]](pairs)), TOKEN) == expected
    assert compute_signature(URL, {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234"]},
                             TOKEN) == expected


# --- refusal of forgeries ------------------------------------------------------------------
@pytest.mark.req("R-10.3")
@pytest.mark.parametrize(
    ("url", "params", "signature", "token"),
    [
        (URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "wrong-token"),
        (URL, {**PARAMS, "Digits": "9999"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TOKEN),
        (URL, {**PARAMS, "Extra": ""}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TOKEN),
        ("https://mycompany.com/myapp.php?foo=1&bar=3", PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TOKEN),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TOKEN),
        (URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8", TOKEN),
        (URL, PARAMS, "", TOKEN),
        (URL, PARAMS, None, TOKEN),
        (URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=ä", TOKEN),
    ],
)
def test_forged_signatures_are_refused(
    url: str, params: dict[str, str], signature: str | None, token: str
) -> None:
    assert not validate_signature(url, params, signature, token)
    with pytest.raises(AuthenticationError) as info:
        check_signature(url, params, signature, token)
    assert info.value.code == "unauthenticated"


@pytest.mark.req("R-10.3")
def test_file_upload_in_form_fails_validation_instead_of_raising() -> None:
    assert not validate_signature(URL, [("CallSid", b"x")], "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TOKEN)  # type: ignore[list-item]


def test_fragment_is_not_signed() -> None:
    assert validate_signature(URL + "#rc=3&rp=all", PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TOKEN)


# --- cross-check against the official SDK ---------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        URL,
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        "http://vd.example/twilio/voice",
        "http://vd.example:80/twilio/voice",
        "https://vd.example:8443/twilio/voice?tenant=a%20b&x=%C3%A4",
        "https://[2001:db8::1]/twilio/voice",
        "https://vd.example/t/ü/voice",
    ],
)
def test_agrees_with_official_request_validator(url: str) -> None:
    sdk = RequestValidator(TOKEN)
    pairs = [("CallSid", "CA1"), ("From", "+4930123"), ("Body", "Grüße & mehr"), ("Digits", "2"),
             ("Digits", "1"), ("Empty", "")]
    multi = GetlistDict(pairs)
    ours = compute_signature(url, pairs, TOKEN)
    assert ours == sdk.compute_signature(url, multi)
    assert validate_signature(url, pairs, ours, TOKEN) == sdk.validate(url, multi, ours)
    for variant in port_variants(url):
        sig = sdk.compute_signature(variant, multi)
        assert sdk.validate(url, multi, sig)
        assert validate_signature(url, pairs, sig, TOKEN)
    assert not sdk.validate(url, multi, "x" + ours) and not validate_signature(url, pairs, "x" + ours, TOKEN)


def test_agrees_with_official_request_validator_on_json_bodies() -> None:
    sdk = RequestValidator(TOKEN)
    url = f"https://vd.example/hook?bodySHA256={body_sha256(BODY)}"
    sig = sign(url, None, TOKEN)
    assert sdk.validate(url, BODY, sig)
    assert validate_signature(url, None, sig, TOKEN, body=BODY)
    assert not sdk.validate(url, BODY + "x", sig)
    assert not validate_signature(url, None, sig, TOKEN, body=BODY + "x")


def test_sha256_shared_key_algorithm_agrees_with_sdk() -> None:
    sdk = RequestValidator("shared-secret")
    algorithm = signature_algorithm("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256")
    assert algorithm == "HMAC_SHA256"
    assert signature_algorithm(None) == "HMAC_SHA1"
    sig = compute_signature(URL, PARAMS, "shared-secret", algorithm=algorithm)
    assert sig == sdk.compute_signature(URL, PARAMS, algorithm)
    assert validate_signature(URL, PARAMS, sig, "shared-secret", algorithm=algorithm)
    assert not validate_signature(URL, PARAMS, sig, "shared-secret")
    assert not validate_signature(URL, PARAMS, sig, "shared-secret", algorithm="HMAC_MD5")


# --- URLs -------------------------------------------------------------------------------------
def test_port_variants_keep_path_and_query_untouched() -> None:
    assert port_variants("https://u:p@host.example/a:b?x=1:2") == (
        "https://u:p@host.example/a:b?x=1:2", "https://u:p@host.example:443/a:b?x=1:2")
    assert port_variants("wss://host/twilio/media") == ("wss://host/twilio/media", "wss://host:443/twilio/media")
    assert port_variants("http://host:8000") == ("http://host", "http://host:8000")
    assert port_variants("https://[::1]:8443/x") == ("https://[::1]/x", "https://[::1]:8443/x")


def test_signed_url_uses_public_base_path_and_raw_query() -> None:
    assert signed_url("https://vd.example/", "/twilio/voice", b"") == "https://vd.example/twilio/voice"
    assert signed_url("https://vd.example/base", b"/twilio/voice", b"a=1&b=%20") == (
        "https://vd.example/base/twilio/voice?a=1&b=%20")
    assert websocket_url("https://vd.example/twilio/media") == "wss://vd.example/twilio/media"
    assert websocket_url("http://127.0.0.1:8000/twilio/media") == "ws://127.0.0.1:8000/twilio/media"


@pytest.mark.req("R-10.3")
def test_webhook_signed_for_public_url_validates_behind_a_tls_proxy() -> None:
    form = parse_qsl("CallSid=CA1&From=%2B4930123&To=%2B4930999&CallStatus=ringing", keep_blank_values=True)
    sig = sign("https://vd.example/twilio/voice", form, "tok")
    # the app sees http://10.0.0.5:8000/twilio/voice but validates against the public URL
    assert validate_signature(signed_url("https://vd.example", "/twilio/voice"), form, sig, "tok")
    assert not validate_signature("http://10.0.0.5:8000/twilio/voice", form, sig, "tok")


# --- call tokens ------------------------------------------------------------------------------
SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_call_token_round_trip() -> None:
    token = issue_call_token(SECRET, "call-1", "tenant-a", 60, NOW)
    assert len(token) < 300
    assert all(c.isalnum() or c in "-_." for c in token)
    verified = verify_call_token(SECRET, token, NOW + timedelta(seconds=59), call_id="call-1")
    assert verified == CallToken(
        call_id="call-1", tenant_id="tenant-a", expires_at=NOW + timedelta(seconds=60),
        token_id=verified.token_id,
    )
    again = issue_call_token(SECRET, "call-1", "tenant-a", 60, NOW)
    assert verify_call_token(SECRET, again, NOW).token_id != verified.token_id


@pytest.mark.req("R-10.3")
def test_call_token_expired_forged_or_for_another_call_is_refused() -> None:
    token = issue_call_token(SECRET, "call-1", "tenant-a", 60, NOW)
    version, payload, mac = token.split(".")
    bad = [
        None, "", "garbage", "v1..", f"v2.{payload}.{mac}", f"{version}.{payload}.{mac[:-2]}",
        f"{version}.{payload}x.{mac}", f"{version}.{payload}.{mac}==", token + "ä",
        issue_call_token(b"another-secret-of-32-bytes......", "call-1", "tenant-a", 60, NOW),
    ]
    for candidate in bad:
        with pytest.raises(AuthenticationError):
            verify_call_token(SECRET, candidate, NOW)
    with pytest.raises(AuthenticationError, match="expired"):
        verify_call_token(SECRET, token, NOW + timedelta(seconds=60))
    with pytest.raises(AuthenticationError):
        verify_call_token(SECRET, token, NOW, call_id="call-2")


def test_call_token_secret_rotation() -> None:
    old = issue_call_token(SECRET, "c", "t", 60, NOW)
    assert verify_call_token([b"new-secret-new-secret-new-secret", SECRET], old, NOW).call_id == "c"


def test_call_token_needs_aware_time_and_a_real_secret() -> None:
    with pytest.raises(RuntimeError):
        issue_call_token(SECRET, "c", "t", 60, datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(RuntimeError):
        issue_call_token(b"short", "c", "t", 60, NOW)
