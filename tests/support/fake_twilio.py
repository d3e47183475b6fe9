"""A real-protocol fake of Twilio's REST API (Calls update, Messages create) on 127.0.0.1.

It speaks what ``voicedesk.telephony.twilio.rest`` and the twilio SDK speak: form-encoded
POSTs under ``/2010-04-01/Accounts/{AccountSid}/…``, HTTP Basic auth (account SID + auth
token), Twilio-shaped JSON bodies and error bodies (``code``, ``message``, ``more_info``,
``status``). Everything received is kept for assertions::

    async with FakeTwilio.serve() as twilio:
        twilio.add_call("CA…")
        … code under test with base_url=twilio.base_url …
        assert twilio.calls["CA…"].twiml == [...]

``serve_asgi(app)`` runs any ASGI app on a free port with uvicorn inside the test's event
loop; the emulator tests use it for their in-test voicedesk stand-in.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

API = "/2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
TERMINAL = {"completed", "busy", "failed", "no-answer", "canceled"}


@asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:<free port> for the duration; yields ``http://127.0.0.1:PORT``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws_ping_interval=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _now() -> str:
    return format_datetime(datetime.now(UTC), usegmt=True)


@dataclass
class FakeCall:
    """A call as the fake knows it, plus every update it received."""

    sid: str
    status: str = "in-progress"
    from_: str = "+4915112345678"
    to: str = "+4930123456"
    twiml: list[str] = field(default_factory=list)
    urls: list[tuple[str, str]] = field(default_factory=list)
    updates: list[dict[str, str]] = field(default_factory=list)


@dataclass
class FakeMessage:
    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None


@dataclass
class _Failure:
    status: int
    code: int | None
    delay_s: float
    body: str | None


class FakeTwilio:
    """State and FastAPI app of the fake; ``serve()`` puts it on a port."""

    def __init__(self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.calls: dict[str, FakeCall] = {}
        self.messages: list[FakeMessage] = []
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.auth_failures = 0
        self.base_url = ""
        self._failures: list[_Failure] = []
        self.app = self._build_app()

    @classmethod
    @asynccontextmanager
    async def serve(
        cls, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN
    ) -> AsyncIterator[FakeTwilio]:
        fake = cls(account_sid, auth_token)
        async with serve_asgi(fake.app) as base_url:
            fake.base_url = base_url
            yield fake

    def add_call(
        self,
        sid: str | None = None,
        *,
        status: str = "in-progress",
        from_: str = "+4915112345678",
        to: str = "+4930123456",
    ) -> FakeCall:
        call = FakeCall(sid=sid or "CA" + secrets.token_hex(16), status=status, from_=from_, to=to)
        self.calls[call.sid] = call
        return call

    def fail_next(
        self, status: int, *, code: int | None = None, delay_s: float = 0.0, body: str | None = None
    ) -> None:
        """The next request gets this failure (after ``delay_s``), whatever it asks for."""
        self._failures.append(_Failure(status, code, delay_s, body))

    # --- protocol -------------------------------------------------------------------------
    def _error(self, status: int, code: int, message: str) -> JSONResponse:
        return JSONResponse(
            {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
             "status": status},
            status_code=status,
        )

    def _authorised(self, request: Request, account_sid: str) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            return False
        ok = hmac.compare_digest(user.encode(), self.account_sid.encode()) and hmac.compare_digest(
            password.encode(), self.auth_token.encode()
        )
        return ok and account_sid == self.account_sid

    async def _receive(self, request: Request, account_sid: str) -> dict[str, list[str]] | Response:
        form = await request.form()
        fields: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            fields.setdefault(key, []).append(str(value))
        self.requests.append((request.method, request.url.path, fields))
        if self._failures:
            failure = self._failures.pop(0)
            if failure.delay_s:
                await asyncio.sleep(failure.delay_s)
            if failure.body is not None:
                return Response(failure.body, status_code=failure.status, media_type="text/html")
            return self._error(failure.status, failure.code or failure.status, "injected failure")
        if not self._authorised(request, account_sid):
            self.auth_failures += 1
            return self._error(401, 20003, "Authenticate")
        return fields

    def _call_json(self, call: FakeCall) -> dict[str, Any]:
        return {
            "sid": call.sid, "account_sid": self.account_sid, "status": call.status,
            "to": call.to, "from": call.from_, "direction": "inbound", "api_version": "2010-04-01",
            "date_updated": _now(), "parent_call_sid": None,
            "uri": f"{API}/Accounts/{self.account_sid}/Calls/{call.sid}.json",
        }

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post(API + "/Accounts/{account_sid}/Calls/{call_sid}.json")
        async def update_call(account_sid: str, call_sid: str, request: Request) -> Response:
            received = await self._receive(request, account_sid)
            if isinstance(received, Response):
                return received
            form = {k: v[-1] for k, v in received.items()}
            call = self.calls.get(call_sid)
            if call is None or call.status in TERMINAL:
                return self._error(404, 20404, f"The requested resource {request.url.path} was not found")
            if not {"Twiml", "Url", "Status"} & form.keys():
                return self._error(400, 21201, "No valid update parameters")
            call.updates.append(form)
            if "Twiml" in form:
                call.twiml.append(form["Twiml"])
            if "Url" in form:
                call.urls.append((form["Url"], form.get("Method", "POST")))
            if form.get("Status") in ("completed", "canceled"):
                call.status = form["Status"]
            return JSONResponse(self._call_json(call))

        @app.post(API + "/Accounts/{account_sid}/Messages.json")
        async def create_message(account_sid: str, request: Request) -> Response:
            received = await self._receive(request, account_sid)
            if isinstance(received, Response):
                return received
            form = {k: v[-1] for k, v in received.items()}
            to = form.get("To", "")
            if not to.startswith("+") or not to[1:].isdigit():
                return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
            if not form.get("From") and not form.get("MessagingServiceSid"):
                return self._error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required")
            if not form.get("Body"):
                return self._error(400, 21602, "Message body is required.")
            message = FakeMessage(
                sid="SM" + secrets.token_hex(16), to=to, from_=form.get("From"),
                messaging_service_sid=form.get("MessagingServiceSid"), body=form["Body"],
                status_callback=form.get("StatusCallback"),
            )
            self.messages.append(message)
            status = "accepted" if message.messaging_service_sid else "queued"
            return JSONResponse(
                {
                    "sid": message.sid, "account_sid": self.account_sid, "status": status,
                    "to": to, "from": message.from_, "body": message.body,
                    "messaging_service_sid": message.messaging_service_sid,
                    "num_segments": str(max(1, -(-len(message.body) // 153))), "direction": "outbound-api",
                    "error_code": None, "error_message": None, "date_created": _now(),
                    "api_version": "2010-04-01",
                    "uri": f"{API}/Accounts/{self.account_sid}/Messages/{message.sid}.json",
                },
                status_code=201,
            )

        return app
