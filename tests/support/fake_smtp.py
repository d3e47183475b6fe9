"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, for e-mail tests::

    with FakeSmtp.serve() as smtp:
        sender = SmtpEmail(host=smtp.host, port=smtp.port, security="none", sender="praxis@example.org")
        ...
        message = smtp.messages[0]   # email.message.EmailMessage, parsed
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class FakeSmtp:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)

    @property
    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.received]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    @classmethod
    @contextmanager
    def serve(cls) -> Iterator[FakeSmtp]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        fake = cls(port=port)
        controller = Controller(fake, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            yield fake
        finally:
            controller.stop()
