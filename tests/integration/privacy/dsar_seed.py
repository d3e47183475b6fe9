"""Seeding people across every table and the blob store, for the DSAR/export/erasure tests.

``seed_person`` runs the same services and sinks a live call uses: the inbound call record
(``calls.service``), transcript turns, consent records and a two-track recording (the store
sinks), the post-call summary, a booking, a message and a DSAR said during the call
(``StoreDialogueTools``), plus a queued outbound message and the contact details.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from voicedesk.appointments.service import StoreDialogueTools
from voicedesk.calls.service import do_finish_call, do_open_inbound_call, load_call_context
from voicedesk.calls.sinks import CallRef, StoreConsentSink, StoreRecordingSink, StoreTurnSink
from voicedesk.dialogue.tools import Preferences
from voicedesk.domain.consent import ConsentDecision, ConsentTexts
from voicedesk.store.models import Call, OutboxMessage, Tenant
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.vault import Vault
from voicedesk.voice.sinks import RecordedChunk, RecordingStart, TurnRecord

BERLIN = ZoneInfo("Europe/Berlin")
TENANT_NUMBER = "+4969123456780"


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    phone: str
    email: str
    street: str
    company: str
    ref: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def identifiers(self) -> list[str]:
        """Strings that must not survive this person's erasure anywhere."""
        return [self.first, self.last, self.phone, self.phone.lstrip("+"), self.email, self.street, self.company,
                self.ref]


ALICE = Person("Adelheid", "Quastenberg", "+4917612340001", "adelheid.quastenberg@example.org",
               "Zwetschgenweg 17", "Quastenberg Feinmechanik", "KD-770011")
BORIS = Person("Borislav", "Wendeltreppe", "+4917612340002", "borislav.wendeltreppe@example.org",
               "Holunderstieg 4", "Wendeltreppen GmbH", "KD-770022")
CARLA = Person("Carlotta", "Findelkind", "+4917612340003", "carlotta.findelkind@example.org",
               "Mispelgasse 9", "Findelkind & Söhne", "KD-770033")


@dataclass(frozen=True)
class Seeded:
    person: Person
    subject_id: uuid.UUID
    key_id: uuid.UUID
    call_id: uuid.UUID
    call_sid: str
    appointment_id: uuid.UUID
    message_id: str
    dsar_id: str
    pcm: np.ndarray  # the caller track as written


def tone(seconds: float, freq: float, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)


async def seed_person(vault: Vault, tenant: Tenant, person: Person, *, slot: dt.datetime, freq: float = 440.0
                      ) -> Seeded:
    call_sid = "CA" + uuid.uuid4().hex
    opened = await do_open_inbound_call(vault, call_sid=call_sid, from_=person.phone, to=TENANT_NUMBER,
                                        caller_name=person.name, instance_id="test")
    async with vault.db.transaction() as s:
        call = await s.get(Call, opened.call_id)
        assert call is not None and call.subject_id is not None
        subject = await subject_repo.get_subject(s, tenant.id, call.subject_id)
        await subject_repo.upsert_contact(s, vault.keys, subject, subject_repo.ContactData(
            first_name=person.first, last_name=person.last, email=person.email, phone=person.phone,
            address=f"{person.street}, 60325 Frankfurt", company=person.company, customer_ref=person.ref),
            vault.clock.now())
        subject_id, key_id = subject.id, subject.key_id
    ref = CallRef(tenant.id, opened.call_id, subject_id, key_id)
    consents = StoreConsentSink(vault, ref)
    context = await load_call_context(vault, tenant.id, opened.call_id)
    heard = ConsentTexts(context.announcement_version, context.announcement, context.consent_question)
    for purpose in ("recording", "transcription"):
        await consents.record(ConsentDecision(purpose=purpose, decision="granted", method="key",
                                              at=vault.clock.now(), text_version=heard.version,
                                              text_sha256=heard.sha256("ask"), reason="key 1"))
    turns = StoreTurnSink(vault, ref)
    await turns.add(TurnRecord(0, "assistant", "Praxis Dr. Müller, was kann ich für Sie tun?", 0, 2000))
    await turns.add(TurnRecord(1, "caller", f"Hier ist {person.name}, meine Nummer ist {person.phone}, "
                                            f"meine Mail {person.email}.", 2500, 6000, intent="book"))
    await turns.add(TurnRecord(2, "assistant", f"Danke, {person.first}. Ich buche den Termin.", 6500, 8000,
                               intent="book", actions=("book",)))
    recorder = StoreRecordingSink(vault, ref)
    await recorder.open(RecordingStart(call_sid=call_sid, stream_id="MZ1", sample_rate=8000, offset_ms=0))
    pcm = tone(1.5, freq)
    for i in range(0, pcm.size, 1600):
        await recorder.write(RecordedChunk("caller", pcm[i:i + 1600], offset_ms=i * 1000 // 8000))
    await recorder.write(RecordedChunk("assistant", tone(0.5, 2 * freq), offset_ms=0))
    await recorder.close()
    tools = StoreDialogueTools(vault, tenant.id, call_id=opened.call_id, caller_phone=person.phone,
                               actor=f"call:{opened.call_id}")
    booked = await tools.book_detailed("consultation", slot, staff="dr-mueller", name=person.name,
                                       phone=person.phone, email=person.email,
                                       preferences=Preferences(staff_id="dr-mueller", note=f"{person.first} mag "
                                                                                          "Vormittage"))
    assert booked.subject_id == subject_id, "the booking must land on the caller's subject"
    message_id = await tools.take_message(name=person.name, phone=person.phone,
                                          reason=f"Rückruf an {person.name} wegen {person.ref}", urgency="normal")
    dsar_id = await tools.record_dsar_request("access", phone=person.phone, email=person.email, name=person.name)
    await do_finish_call(vault, tenant.id, opened.call_id, outcome="booked",
                         summary=f"{person.name} ({person.phone}) hat einen Termin gebucht.")
    async with vault.db.transaction() as s:
        row = OutboxMessage(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=subject_id, channel="sms",
                            due_at=vault.clock.now())
        row.payload_enc = await vault.keys.encrypt(tenant.id, key_id, f'{{"to": "{person.phone}", "body": '
                                                   f'"Hallo {person.first}"}}', table="outbox", row_id=row.id,
                                                   column="payload")
        s.add(row)
    return Seeded(person, subject_id, key_id, opened.call_id, call_sid, booked.appointment_id, message_id, dsar_id,
                  pcm)


def thursday(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 26, hour, minute, tzinfo=BERLIN)
