import asyncio

import pytest

from tests.support.fake_twilio import FakeTwilio
from voicedesk.domain.errors import ErrorCategory, ProviderError
from voicedesk.telephony.twilio import twiml
from voicedesk.telephony.twilio.rest import CallUpdated, TwilioCallControl


def control(fake: FakeTwilio, *, token: str | None = None, timeout_s: float = 5.0) -> TwilioCallControl:
    return TwilioCallControl(
        fake.account_sid, token or fake.auth_token, base_url=fake.base_url, timeout_s=timeout_s
    )


async def test_cold_transfer_updates_the_live_call_with_dial_twiml() -> None:
    async with FakeTwilio.serve() as fake, control(fake) as twilio:
        call = fake.add_call()
        dial = twiml.cold_transfer("+4930555000", caller_id="+4930123456", action_url="https://vd.example/t")
        result = await twilio.update_call_twiml(call.sid, dial)
        assert result == CallUpdated(sid=call.sid, status="in-progress")
        assert call.twiml == [dial]
        method, path, form = fake.requests[-1]
        assert (method, path) == ("POST", f"/2010-04-01/Accounts/{fake.account_sid}/Calls/{call.sid}.json")
        assert form == {"Twiml": [dial]}


async def test_redirect_records_url_and_method() -> None:
    async with FakeTwilio.serve() as fake, control(fake) as twilio:
        call = fake.add_call()
        await twilio.redirect(call.sid, "https://vd.example/twilio/voice/resume?x=1")
        assert call.urls == [("https://vd.example/twilio/voice/resume?x=1", "POST")]


@pytest.mark.req("R-3.1")
async def test_hangup_is_idempotent() -> None:
    async with FakeTwilio.serve() as fake, control(fake) as twilio:
        call = fake.add_call()
        assert await twilio.hangup(call.sid) is True
        assert call.status == "completed"
        assert await twilio.hangup(call.sid) is False  # finished: Twilio answers 404 / 20404
        assert await twilio.hangup("CA" + "f" * 32) is False  # unknown


async def test_send_sms_returns_the_message_sid() -> None:
    async with FakeTwilio.serve() as fake, control(fake) as twilio:
        sent = await twilio.send_sms("+4915112345678", "+4930123456", "Ihr Termin: Di 10:00",
                                     status_callback="https://vd.example/sms-status")
        assert sent.sid.startswith("SM") and len(sent.sid) == 34
        assert sent.status == "queued"
        [message] = fake.messages
        assert (message.sid, message.to, message.from_, message.body, message.status_callback) == (
            sent.sid, "+4915112345678", "+4930123456", "Ihr Termin: Di 10:00", "https://vd.example/sms-status")


async def test_send_sms_through_a_messaging_service() -> None:
    async with FakeTwilio.serve() as fake, control(fake) as twilio:
        service = "MG" + "a" * 32
        sent = await twilio.send_sms("+4915112345678", service, "Hallo")
        assert sent.status == "accepted"
        assert fake.messages[0].messaging_service_sid == service
        assert fake.messages[0].from_ is None


async def test_invalid_number_is_a_permanent_bad_request_without_the_number_in_the_error() -> None:
    async with FakeTwilio.serve() as fake, control(fake) as twilio:
        with pytest.raises(ProviderError) as info:
            await twilio.send_sms("0151-not-e164", "+4930123456", "x")
        assert info.value.category is ErrorCategory.BAD_REQUEST
        assert info.value.is_permanent
        assert info.value.fields["twilio_code"] == 21211
        assert "0151" not in str(info.value.to_dict())


async def test_wrong_credentials_are_an_auth_error() -> None:
    async with FakeTwilio.serve() as fake, control(fake, token="wrong") as twilio:
        call = fake.add_call()
        with pytest.raises(ProviderError) as info:
            await twilio.hangup(call.sid)
        assert info.value.category is ErrorCategory.AUTH
        assert info.value.fields["twilio_code"] == 20003
        assert fake.auth_failures == 1
        assert call.status == "in-progress"


@pytest.mark.parametrize(
    ("status", "code", "category"),
    [(429, 20429, ErrorCategory.RATE_LIMITED), (500, 20500, ErrorCategory.SERVER),
     (503, 20503, ErrorCategory.SERVER), (400, 21201, ErrorCategory.BAD_REQUEST)],
)
async def test_server_failures_map_to_categories(status: int, code: int, category: ErrorCategory) -> None:
    async with FakeTwilio.serve() as fake, control(fake) as twilio:
        call = fake.add_call()
        fake.fail_next(status, code=code)
        with pytest.raises(ProviderError) as info:
            await twilio.update_call_twiml(call.sid, twiml.hang_up())
        assert info.value.category is category
        assert info.value.fields["status"] == status
        assert info.value.fields["twilio_code"] == code


async def test_non_json_error_page_still_maps() -> None:
    async with FakeTwilio.serve() as fake, control(fake) as twilio:
        fake.fail_next(502, body="<html>Bad gateway</html>")
        with pytest.raises(ProviderError) as info:
            await twilio.send_sms("+4915112345678", "+4930123456", "x")
        assert info.value.category is ErrorCategory.SERVER
        assert info.value.fields["twilio_code"] is None


async def test_slow_twilio_is_a_timeout() -> None:
    async with FakeTwilio.serve() as fake, control(fake, timeout_s=0.1) as twilio:
        call = fake.add_call()
        fake.fail_next(200, delay_s=0.5)
        with pytest.raises(ProviderError) as info:
            await twilio.hangup(call.sid)
        assert info.value.category is ErrorCategory.TIMEOUT
        assert not info.value.is_permanent


async def test_unreachable_twilio_is_a_network_error() -> None:
    async with FakeTwilio.serve() as fake:
        base_url = fake.base_url
    await asyncio.sleep(0)
    async with TwilioCallControl("AC1", "t", base_url=base_url, timeout_s=2) as twilio:
        with pytest.raises(ProviderError) as info:
            await twilio.hangup("CA1")
        assert info.value.category is ErrorCategory.NETWORK
