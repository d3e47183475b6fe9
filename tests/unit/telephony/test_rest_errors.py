"""The REST adapter's error mapping is complete: every HTTP status class and every httpx
exception leaves as ``ProviderError`` with the right category (``httpx.MockTransport``)."""

import httpx
import pytest

from voicedesk.domain.errors import ErrorCategory, ProviderError
from voicedesk.telephony.twilio.rest import TwilioCallControl, twilio_base_url


def _all_subclasses(cls: type[Exception]) -> list[type[Exception]]:
    out: list[type[Exception]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def control(handler: httpx.MockTransport) -> TwilioCallControl:
    return TwilioCallControl("AC123", "token", transport=handler)


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (400, ErrorCategory.BAD_REQUEST), (401, ErrorCategory.AUTH), (403, ErrorCategory.AUTH),
        (404, ErrorCategory.NOT_FOUND), (405, ErrorCategory.BAD_REQUEST), (408, ErrorCategory.TIMEOUT),
        (409, ErrorCategory.BAD_REQUEST), (422, ErrorCategory.BAD_REQUEST),
        (429, ErrorCategory.RATE_LIMITED), (500, ErrorCategory.SERVER), (502, ErrorCategory.SERVER),
        (503, ErrorCategory.SERVER), (504, ErrorCategory.SERVER),
    ],
)
async def test_http_status_mapping(status: int, category: ErrorCategory) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"code": 20000 + status, "message": "+4915112345678 bad",
                                            "status": status})

    async with control(httpx.MockTransport(reply)) as twilio:
        with pytest.raises(ProviderError) as info:
            await twilio.update_call_twiml("CA1", "<Response/>")
    error = info.value
    assert error.category is category
    assert error.provider == "twilio"
    assert error.fields["status"] == status
    assert error.fields["twilio_code"] == 20000 + status
    assert "+4915112345678" not in repr(error.to_dict())


ALL_HTTPX_ERRORS = [e for e in _all_subclasses(httpx.HTTPError) if e is not httpx.HTTPStatusError]


@pytest.mark.parametrize("exc_type", ALL_HTTPX_ERRORS, ids=lambda e: e.__name__)
async def test_every_httpx_exception_is_translated(exc_type: type[httpx.HTTPError]) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=request)  # type: ignore[call-arg]

    async with control(httpx.MockTransport(fail)) as twilio:
        with pytest.raises(ProviderError) as info:
            await twilio.send_sms("+4915112345678", "+4930123456", "x")
    assert isinstance(info.value.__cause__, exc_type)
    timeout = issubclass(exc_type, httpx.TimeoutException)
    expected = ErrorCategory.TIMEOUT if timeout else ErrorCategory.NETWORK
    assert info.value.category is expected
    assert not info.value.is_permanent


@pytest.mark.parametrize(
    ("exc_type", "category"),
    [(httpx.ConnectTimeout, ErrorCategory.TIMEOUT), (httpx.ReadTimeout, ErrorCategory.TIMEOUT),
     (httpx.ConnectError, ErrorCategory.NETWORK), (httpx.RemoteProtocolError, ErrorCategory.NETWORK)],
)
async def test_named_transport_errors(exc_type: type[httpx.TransportError], category: ErrorCategory) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=request)

    async with control(httpx.MockTransport(fail)) as twilio:
        with pytest.raises(ProviderError) as info:
            await twilio.redirect("CA1", "https://vd.example/x")
    assert info.value.category is category


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"[1,2]", b'{"status":"queued"}'])
async def test_unusable_success_body_is_a_server_error(body: bytes) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, content=body)

    async with control(httpx.MockTransport(reply)) as twilio:
        with pytest.raises(ProviderError) as info:
            await twilio.send_sms("+4915112345678", "+4930123456", "x")
    assert info.value.category is ErrorCategory.SERVER


async def test_hangup_treats_only_20404_as_done() -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="no such route")

    async with control(httpx.MockTransport(reply)) as twilio:
        with pytest.raises(ProviderError) as info:
            await twilio.hangup("CA1")
    assert info.value.category is ErrorCategory.NOT_FOUND


async def test_request_shape() -> None:
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"sid": "CA1", "status": "completed"})

    async with control(httpx.MockTransport(reply)) as twilio:
        assert await twilio.hangup("CA1") is True
    [request] = seen
    assert str(request.url) == "https://api.twilio.com/2010-04-01/Accounts/AC123/Calls/CA1.json"
    assert request.headers["authorization"] == "Basic QUMxMjM6dG9rZW4="
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.content == b"Status=completed"


@pytest.mark.parametrize(
    ("region", "edge", "expected"),
    [
        (None, None, "https://api.twilio.com"),
        ("ie1", None, "https://api.ie1.twilio.com"),
        ("ie1", "dublin", "https://api.dublin.ie1.twilio.com"),
        (None, "sydney", "https://api.sydney.us1.twilio.com"),
    ],
)
def test_region_and_edge_hosts(region: str | None, edge: str | None, expected: str) -> None:
    assert twilio_base_url(region=region, edge=edge) == expected


def test_region_override_of_a_regional_base_url() -> None:
    assert twilio_base_url("https://api.dublin.ie1.twilio.com", region="au1") == (
        "https://api.dublin.au1.twilio.com")
    assert twilio_base_url("http://127.0.0.1:8123/") == "http://127.0.0.1:8123"


@pytest.mark.parametrize(
    ("region", "edge"), [("ie1", None), ("ie1", "dublin"), (None, "tokyo"), ("au1", "sydney")]
)
def test_hosts_agree_with_the_official_sdk(region: str | None, edge: str | None) -> None:
    from twilio.rest import Client

    sdk = Client("AC123", "token", region=region, edge=edge)
    uri = "https://api.twilio.com/2010-04-01/Accounts/AC123/Calls/CA1.json"
    assert sdk.get_hostname(uri) == twilio_base_url(region=region, edge=edge) + uri[len("https://api.twilio.com"):]
