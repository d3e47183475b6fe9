"""SMS through Twilio's Messages API (protocols.md §4), on httpx.

``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP Basic auth and the
form fields ``To``, ``From`` or ``MessagingServiceSid``, ``Body``. Region and edge select the
host as twilio-python does (``region="ie1", edge="dublin"`` →
``https://api.dublin.ie1.twilio.com``); IE1 needs IE1 credentials.

Why not the ``twilio`` SDK: its client is synchronous (``requests``) unless aiohttp is
used, and neither form takes a base URL, so pointing it at the real-protocol fake on
127.0.0.1 would mean patching ``client.api.base_url`` internals. This module is ~100 lines,
async, and maps every failure to ``ProviderError`` like ``telephony/twilio/rest.py`` (which
the services ring must not import).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from voicedesk.domain.errors import ErrorCategory, ProviderError
from voicedesk.integrations.processors import Processor

DEFAULT_BASE_URL: Final = "https://api.twilio.com"
PROVIDER: Final = "twilio"
MAX_BODY: Final = 1600


class SmsSender(Protocol):
    """Sends one text message; returns the provider's message id."""

    @property
    def processor(self) -> Processor:
        """The processor that receives the number and the text."""
        ...

    async def send_sms(self, to: str, body: str) -> str:
        """Raise ``ProviderError`` when the provider refuses or cannot be reached."""
        ...


def twilio_host(base_url: str = DEFAULT_BASE_URL, *, region: str | None = None, edge: str | None = None) -> str:
    """``https://api[.edge].region.twilio.com`` as twilio-python builds it; a fake's URL passes through."""
    if not region and not edge:
        return base_url.rstrip("/")
    parts = urlsplit(base_url)
    pieces = parts.netloc.split(".")
    netloc = ".".join(p for p in (pieces[0], edge, region or "us1", ".".join(pieces[-2:])) if p)
    return urlunsplit(parts._replace(netloc=netloc)).rstrip("/")


def _category(status: int) -> ErrorCategory:
    if status in (401, 403):
        return ErrorCategory.AUTH
    if status == 404:
        return ErrorCategory.NOT_FOUND
    if status == 429:
        return ErrorCategory.RATE_LIMITED
    if status >= 500:
        return ErrorCategory.SERVER
    return ErrorCategory.BAD_REQUEST


@dataclass
class TwilioSms:
    """An ``SmsSender`` for one Twilio account; ``sender`` is a number, an alphanumeric ID or ``MG…``."""

    account_sid: str
    auth_token: str
    sender: str
    region: str | None = None
    edge: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = 10.0
    transport: httpx.AsyncBaseTransport | None = None

    @property
    def processor(self) -> Processor:
        location = "Ireland (Twilio IE1 region)" if (self.region or "").lower() == "ie1" else "USA (Twilio US1)"
        return Processor(
            name="Twilio", purpose="appointment confirmations, reminders and verification codes by SMS",
            location=location, data_categories=("phone number", "message text (name, appointment)"),
            transfer_safeguard=None if "Ireland" in location else "EU SCC (Twilio DPA)",
        )

    async def send_sms(self, to: str, body: str) -> str:
        if not body or len(body) > MAX_BODY:
            raise ValueError(f"an SMS body must be 1..{MAX_BODY} characters")
        form = {"To": to, "Body": body}
        form["MessagingServiceSid" if self.sender.startswith("MG") else "From"] = self.sender
        url = f"{twilio_host(self.base_url, region=self.region, edge=self.edge)}/2010-04-01/Accounts/" \
              f"{self.account_sid}/Messages.json"
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout_s,
                                         auth=(self.account_sid, self.auth_token)) as client:
                response = await client.post(url, data=form)
        except httpx.TimeoutException as exc:
            raise ProviderError("Twilio SMS timed out", category=ErrorCategory.TIMEOUT, provider=PROVIDER) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(f"Twilio SMS failed: {type(exc).__name__}", category=ErrorCategory.NETWORK,
                                provider=PROVIDER) from exc
        if response.status_code != 201:
            code = None
            try:
                doc = response.json()
                code = doc.get("code") if isinstance(doc, dict) else None
            except ValueError:
                pass
            raise ProviderError(f"Twilio SMS refused with HTTP {response.status_code}",
                                category=_category(response.status_code), provider=PROVIDER,
                                status=response.status_code, twilio_code=code)
        sid = response.json().get("sid")
        if not isinstance(sid, str):
            raise ProviderError("Twilio SMS answer without a message sid", category=ErrorCategory.SERVER,
                                provider=PROVIDER)
        return sid
