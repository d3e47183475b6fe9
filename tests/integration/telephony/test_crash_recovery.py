"""kill -9 in the middle of a call, with a real server process (R-3.1, R-3.2).

``tests/support/serve_tone.py`` runs the real app (tone-keyed speech) in its own process.
A call with consent completes two caller turns; the server is SIGKILLed while the caller
is speaking the third. The same instance (same data dir, same instance id) is started
again: every finished turn must still be there and decrypt, and the call must be closed
as ``interrupted``, while another instance's open call is left alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.support.factories import make_tenant
from tests.support.fakes_voice import tone
from tests.support.raw_stream import RawStream
from tests.support.serve_tone import PHRASES
from voicedesk.calls.service import do_open_inbound_call
from voicedesk.config import Settings
from voicedesk.store.models import Call, Turn
from voicedesk.store.vault import Vault
from voicedesk.telephony.twilio.emulator import TwilioEmulator, parse_twiml

ROOT = Path(__file__).resolve().parents[3]
PUBLIC = "https://vd.example"
TOKEN = "twilio-test-auth-token"
PRAXIS = "+4969123456780"
CALLER = "+4917612345678"
INSTANCE = "crash-test:1"
OTHER_INSTANCE = "crash-test:2"
WHERE, HOURS, PRICES = 500, 700, 900


@dataclass
class Servers:
    """Starts ``serve_tone.py`` processes for one store; kills what is left at the end."""

    settings: Settings
    log_dir: Path
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEDESK_")}
        s = self.settings
        assert s.master_key is not None
        env.update({"VOICEDESK_MASTER_KEY": s.master_key.get_secret_value(), "VOICEDESK_PUBLIC_URL": PUBLIC,
                    "VOICEDESK_TWILIO_AUTH_TOKEN": TOKEN, "VOICEDESK_KEYSTORE_SCHEMA": s.keystore_schema})
        if s.database_url:
            env["VOICEDESK_DATABASE_URL"] = s.database_url
        if s.database_schema:
            env["VOICEDESK_DATABASE_SCHEMA"] = s.database_schema
        return env

    async def start(self) -> tuple[asyncio.subprocess.Process, str]:
        port = _free_port()
        log = self.log_dir / f"server-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "tests/support/serve_tone.py"), "--port", str(port),
                "--data-dir", str(self.settings.data_dir), "--instance-id", INSTANCE,
                cwd=ROOT, env=self.env(), stdout=out, stderr=out)
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        async with asyncio.timeout(20), httpx.AsyncClient(trust_env=False) as http:
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text()[-2000:]}")
                try:
                    if (await http.get(url + "/healthz")).status_code == 200:
                        return proc, url
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)

    async def stop_all(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def servers(vault: Vault, settings: Settings, tmp_path: Path) -> AsyncIterator[Servers]:
    await make_tenant(vault)
    pool = Servers(settings, tmp_path)
    try:
        yield pool
    finally:
        await pool.stop_all()


@dataclass(frozen=True)
class StoredTurn:
    id: uuid.UUID
    seq: int
    speaker: str
    text: str | None


async def stored_turns(vault: Vault, call_id: uuid.UUID) -> list[StoredTurn]:
    async with vault.db.sessions() as s:
        rows = list((await s.scalars(select(Turn).where(Turn.call_id == call_id).order_by(Turn.seq))).all())
    return [StoredTurn(r.id, r.seq, r.speaker,
                       await vault.keys.decrypt(r.tenant_id, r.text_enc, table="turns", row_id=r.id, column="text"))
            for r in rows]


async def call_of(vault: Vault, call_sid: str) -> Call:
    async with vault.db.sessions() as s:
        return (await s.scalars(select(Call).where(Call.provider_call_id == call_sid))).one()


@pytest.mark.req("R-3.1")
@pytest.mark.req("R-3.2")
async def test_kill_9_mid_call_keeps_finished_turns_and_closes_the_call_as_interrupted(
    servers: Servers, vault: Vault
) -> None:
    proc, url = await servers.start()
    async with TwilioEmulator(PUBLIC, TOKEN, server_url=url) as emulator:
        sid, answer = await emulator.ring(to=PRAXIS, from_=CALLER)
        twiml = parse_twiml(answer.text)
        stream = await RawStream.open(emulator.connect_url(twiml.stream_url or ""), sid, twiml.parameters)
        try:
            await stream.wait_for_audio(0)
            before = len(stream.received)
            await stream.press("1")  # consent: finished turns are persisted as they happen
            await stream.wait_for_audio(before)
            await stream.wait_until_quiet()
            await stream.reply_to(tone(WHERE, 600))
            await stream.reply_to(tone(HOURS, 600))
            call = await call_of(vault, sid)
            async with asyncio.timeout(5):
                while len(finished := await stored_turns(vault, call.id)) < 6:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            speaking = asyncio.create_task(stream.say(tone(PRICES, 1500)))
            await asyncio.sleep(0.5)  # the third turn is in flight
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            speaking.cancel()
            await asyncio.gather(speaking, return_exceptions=True)
        finally:
            await stream.abort()

    # another instance's call, open while this instance restarts
    other = await do_open_inbound_call(vault, call_sid="CA" + uuid.uuid4().hex, from_=CALLER, to=PRAXIS,
                                       caller_name=None, instance_id=OTHER_INSTANCE)
    open_before_restart = await call_of(vault, sid)
    assert open_before_restart.ended_at is None and open_before_restart.status == "in-progress"

    await servers.start()  # same data dir, same instance id

    after = await stored_turns(vault, call.id)
    assert [(t.id, t.speaker, t.text) for t in after[: len(finished)]] == [
        (t.id, t.speaker, t.text) for t in finished
    ]
    assert all(t.text is not None for t in after)  # every stored turn decrypts
    assert [t.text for t in after if t.speaker == "caller"] == [PHRASES[WHERE], PHRASES[HOURS]]
    closed = await call_of(vault, sid)
    assert closed.status == "interrupted" and closed.ended_at is not None
    async with vault.db.sessions() as s:
        untouched = await s.get(Call, other.call_id)
    assert untouched is not None and untouched.ended_at is None and untouched.status == "ringing"
