"""The outbound senders against real-protocol fakes: every failure becomes a ``ProviderError``."""

from __future__ import annotations

import socket

import httpx
import pytest
from tests.support.fake_smtp import FakeSmtp
from tests.support.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

from voicedesk.domain.errors import ErrorCategory, ProviderError
from voicedesk.integrations.email import Email, SmtpEmail
from voicedesk.integrations.sms import TwilioSms, twilio_host


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.req("R-5.1")
def test_region_and_edge_select_the_host_like_the_sdk() -> None:
    assert twilio_host(region="ie1", edge="dublin") == "https://api.dublin.ie1.twilio.com"
    assert twilio_host(region="ie1") == "https://api.ie1.twilio.com"
    assert twilio_host(edge="frankfurt") == "https://api.frankfurt.us1.twilio.com"
    assert twilio_host("http://127.0.0.1:9999/") == "http://127.0.0.1:9999"


@pytest.mark.req("R-3.4")
async def test_sms_reaches_the_fake_with_messaging_service_or_number() -> None:
    async with FakeTwilio.serve() as twilio:
        by_number = TwilioSms(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, sender="+4969123456780",
                              base_url=twilio.base_url)
        by_service = TwilioSms(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, sender="MG" + "a" * 32,
                               base_url=twilio.base_url)
        sid1 = await by_number.send_sms("+4917611112222", "Hallo")
        sid2 = await by_service.send_sms("+4917611112222", "Hello")
    assert sid1.startswith("SM") and sid2.startswith("SM")
    assert [(m.from_, m.messaging_service_sid, m.body) for m in twilio.messages] == [
        ("+4969123456780", None, "Hallo"), (None, "MG" + "a" * 32, "Hello")]


@pytest.mark.parametrize(("status", "code", "category"), [
    (400, 21211, ErrorCategory.BAD_REQUEST), (401, 20003, ErrorCategory.AUTH), (404, 20404, ErrorCategory.NOT_FOUND),
    (429, 20429, ErrorCategory.RATE_LIMITED), (500, None, ErrorCategory.SERVER), (503, None, ErrorCategory.SERVER),
])
async def test_sms_errors_map_to_categories(status: int, code: int | None, category: ErrorCategory) -> None:
    async with FakeTwilio.serve() as twilio:
        twilio.fail_next(status, code=code)
        sms = TwilioSms(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, sender="+4969123456780", base_url=twilio.base_url)
        with pytest.raises(ProviderError) as exc:
            await sms.send_sms("+4917611112222", "x")
    assert exc.value.category is category and exc.value.fields["status"] == status
    assert "4917611112222" not in exc.value.msg


async def test_sms_bad_credentials_timeout_and_unreachable() -> None:
    async with FakeTwilio.serve() as twilio:
        wrong = TwilioSms(DEFAULT_ACCOUNT_SID, "wrong", sender="+4969123456780", base_url=twilio.base_url)
        with pytest.raises(ProviderError) as auth:
            await wrong.send_sms("+4917611112222", "x")
        twilio.fail_next(500, delay_s=0.5)
        slow = TwilioSms(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, sender="+4969123456780", base_url=twilio.base_url,
                         timeout_s=0.1)
        with pytest.raises(ProviderError) as timeout:
            await slow.send_sms("+4917611112222", "x")
    gone = TwilioSms(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, sender="+4969123456780",
                     base_url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(ProviderError) as network:
        await gone.send_sms("+4917611112222", "x")
    assert (auth.value.category, timeout.value.category, network.value.category) == (
        ErrorCategory.AUTH, ErrorCategory.TIMEOUT, ErrorCategory.NETWORK)
    assert isinstance(network.value.__cause__, httpx.HTTPError)


@pytest.mark.req("R-5.1")
def test_senders_declare_their_processors() -> None:
    eu = TwilioSms("AC1", "t", sender="+4969123456780", region="ie1", edge="dublin").processor
    us = TwilioSms("AC1", "t", sender="+4969123456780").processor
    assert (eu.name, eu.location, eu.transfer_safeguard) == ("Twilio", "Ireland (Twilio IE1 region)", None)
    assert us.location == "USA (Twilio US1)" and us.transfer_safeguard is not None
    assert "phone number" in us.data_categories
    smtp = SmtpEmail(host="mail.example.org", sender="a@example.org").processor
    assert smtp.name == "SMTP relay (self-configured)" and "e-mail address" in smtp.data_categories


async def test_email_arrives_and_starttls_against_a_plain_server_fails_cleanly() -> None:
    with FakeSmtp.serve() as smtp:
        plain = SmtpEmail(host=smtp.host, port=smtp.port, security="none", sender="praxis@example.org")
        message_id = await plain.send_email(Email(to="anna@example.org", subject="Grüße", text="Hallo Anna"))
        strict = SmtpEmail(host=smtp.host, port=smtp.port, security="starttls", sender="praxis@example.org")
        with pytest.raises(ProviderError) as exc:
            await strict.send_email(Email(to="anna@example.org", subject="x", text="y"))
    [mail] = smtp.messages
    assert mail["Message-ID"] == message_id and mail["Subject"] == "Grüße"
    assert mail.get_content().strip() == "Hallo Anna"
    assert exc.value.category is ErrorCategory.BAD_REQUEST  # the server offers no STARTTLS
    gone = SmtpEmail(host="127.0.0.1", port=_free_port(), security="none", sender="praxis@example.org")
    with pytest.raises(ProviderError) as network:
        await gone.send_email(Email(to="anna@example.org", subject="x", text="y"))
    assert network.value.category is ErrorCategory.NETWORK
