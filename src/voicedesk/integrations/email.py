"""E-mail over SMTP (the tenant's or operator's own relay), with attachments such as .ics invites.

The standard library's ``smtplib`` runs in a worker thread (``aiosmtplib`` is not a
dependency). Transport security is explicit: ``"starttls"`` (port 587, the default),
``"tls"`` (implicit TLS, port 465) or ``"none"`` (only for a relay on localhost or a test
server). Every ``smtplib``/socket failure becomes a ``ProviderError``.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal, Protocol

from voicedesk.domain.errors import ErrorCategory, ProviderError
from voicedesk.integrations.processors import Processor

PROVIDER = "smtp"
Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Email:
    """One message to one recipient (plain text body)."""

    to: str
    subject: str
    text: str
    attachments: tuple[Attachment, ...] = ()
    reply_to: str | None = None


class EmailSender(Protocol):
    @property
    def processor(self) -> Processor:
        """The relay that receives the address and the message."""
        ...

    async def send_email(self, message: Email) -> str:
        """Send; returns the Message-ID. Raise ``ProviderError`` on failure."""
        ...


@dataclass
class SmtpEmail:
    """An ``EmailSender`` over one SMTP relay."""

    host: str
    sender: str
    port: int = 587
    security: Security = "starttls"
    user: str | None = None
    password: str | None = None
    timeout_s: float = 15.0
    ssl_context: ssl.SSLContext | None = None

    @property
    def processor(self) -> Processor:
        return Processor(
            name="SMTP relay (self-configured)", purpose="appointment confirmations and reminders by e-mail",
            location=f"as configured ({self.host})",
            data_categories=("e-mail address", "message text (name, appointment)", "calendar invite"),
        )

    def _build(self, message: Email) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        if message.reply_to:
            mail["Reply-To"] = message.reply_to
        domain = self.sender.rpartition("@")[2] or "voicedesk.invalid"
        mail["Message-ID"] = make_msgid(domain=domain)
        mail.set_content(message.text)
        for a in message.attachments:
            mail.add_attachment(a.content, maintype=a.maintype, subtype=a.subtype, filename=a.filename,
                                params=a.params)
        return mail

    def _send_blocking(self, mail: EmailMessage) -> None:
        context = self.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(mail)

    async def send_email(self, message: Email) -> str:
        mail = self._build(message)
        try:
            await asyncio.to_thread(self._send_blocking, mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise ProviderError("SMTP login refused", category=ErrorCategory.AUTH, provider=PROVIDER) from exc
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError,
                smtplib.SMTPNotSupportedError) as exc:
            raise ProviderError(f"SMTP relay refused the message ({type(exc).__name__})",
                                category=ErrorCategory.BAD_REQUEST, provider=PROVIDER) from exc
        except TimeoutError as exc:
            raise ProviderError("SMTP relay timed out", category=ErrorCategory.TIMEOUT, provider=PROVIDER) from exc
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise ProviderError(f"SMTP relay unreachable or failed ({type(exc).__name__})",
                                category=ErrorCategory.NETWORK, provider=PROVIDER) from exc
        return str(mail["Message-ID"])
