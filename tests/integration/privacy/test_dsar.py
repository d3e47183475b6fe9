"""The data-subject request workflow (R-8.7) and the small rights: rectification (R-8.2),
restriction (R-8.4), objection and withdrawal (R-8.6). Real database, real crypto, SMS
through the real-protocol fake Twilio, e-mail through a real SMTP server on 127.0.0.1.

"Now" is Wednesday 2026-11-25 10:00 Berlin (tenant praxis-mueller, holiday region DE-HE).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select
from tests.integration.privacy.dsar_seed import ALICE, BERLIN, seed_person, thursday
from tests.support.factories import make_tenant
from tests.support.fake_smtp import FakeSmtp
from tests.support.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

from voicedesk.appointments.service import recognise_caller
from voicedesk.clock import FixedClock
from voicedesk.domain import dsar as rules
from voicedesk.domain.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from voicedesk.domain.profile import TenantProfile
from voicedesk.integrations.email import SmtpEmail
from voicedesk.integrations.sms import TwilioSms
from voicedesk.privacy import dsar
from voicedesk.privacy.consents import list_call_consents
from voicedesk.privacy.export import do_export
from voicedesk.store.models import AuditEntry, Consent, DsarRequest, Subject
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.vault import Vault

STAFF = "cli:frau-berger"


def _sender_for(twilio: FakeTwilio) -> Callable[[TenantProfile], dsar.CodeSender]:
    def make(profile: TenantProfile) -> dsar.CodeSender:
        return TwilioSms(account_sid=DEFAULT_ACCOUNT_SID, auth_token=DEFAULT_AUTH_TOKEN,
                         sender=profile.twilio_numbers[0], base_url=twilio.base_url)
    return make


async def _audit(vault: Vault, action_prefix: str = "dsar.") -> list[AuditEntry]:
    async with vault.db.sessions() as s:
        rows = (await s.scalars(select(AuditEntry).where(AuditEntry.action.startswith(action_prefix))
                                .order_by(AuditEntry.seq))).all()
    return list(rows)


def _no_personal_data(entries: list[AuditEntry], *needles: str) -> None:
    blob = json.dumps([[e.actor, e.action, e.object_id, e.reason, e.details] for e in entries], ensure_ascii=False)
    for needle in needles:
        assert needle not in blob


async def _row(vault: Vault, request_id: uuid.UUID | str) -> DsarRequest:
    async with vault.db.sessions() as s:
        row = await s.get(DsarRequest, uuid.UUID(str(request_id)))
    assert row is not None
    return row


@pytest.mark.req("R-8.7")
async def test_request_finds_the_person_by_phone_and_gets_the_art_12_due_date(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    alice = await seed_person(vault, tenant, ALICE, slot=thursday(9))
    view = await dsar.do_create_request(vault, "praxis-mueller", "access", phone="0176 12340001", channel="letter",
                                        actor=STAFF)
    row = await _row(vault, view.id)
    assert row.subject_id == alice.subject_id
    assert (view.state, view.kind, view.channel, view.verification) == ("received", "access", "letter", "pending")
    # Received Wed 25 Nov 2026 → 25 Dec is a holiday, 26 Dec a holiday and Saturday, 27 a Sunday → Mon 28 Dec.
    assert view.due_on == rules.due_date(dt.date(2026, 11, 25), "DE-HE") == dt.date(2026, 12, 28)
    assert row.due_at.astimezone(BERLIN).date() == dt.date(2026, 12, 28)
    assert view.next_reminder == dt.date(2026, 12, 21)
    entries = await _audit(vault, "dsar.receive")
    assert entries[-1].object_id == str(view.id) and entries[-1].details["known"] is True
    _no_personal_data(entries, ALICE.phone, "12340001", ALICE.last)


@pytest.mark.req("R-8.7")
async def test_request_for_an_unknown_e_mail_gets_its_own_subject_with_encrypted_details(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    view = await dsar.do_create_request(vault, "praxis-mueller", "erasure", email="Niemand@Example.org",
                                        actor=STAFF)
    row = await _row(vault, view.id)
    async with vault.db.sessions() as s:
        subject = await s.get(Subject, row.subject_id)
        found = await subject_repo.find_subject_by_email(s, vault.keys, tenant.id, "niemand@example.org")
    assert subject is not None and found is not None and found.id == subject.id
    assert row.details_enc is not None and b"Niemand" not in row.details_enc
    loaded_details = json.loads(await vault.keys.decrypt(tenant.id, row.details_enc, table="dsar_requests",
                                                         row_id=row.id, column="details") or "{}")
    assert loaded_details["email"] == "Niemand@Example.org"
    with pytest.raises(InvalidInputError):
        await dsar.do_create_request(vault, "praxis-mueller", "access", actor=STAFF)
    with pytest.raises(InvalidInputError):
        await dsar.do_create_request(vault, "praxis-mueller", "gossip", phone=ALICE.phone, actor=STAFF)
    with pytest.raises(NotFoundError):
        await dsar.do_create_request(vault, "no-such-tenant", "access", phone=ALICE.phone, actor=STAFF)


@pytest.mark.req("R-8.7")
async def test_identity_by_sms_code_wrong_then_right(vault: Vault) -> None:
    await make_tenant(vault)
    view = await dsar.do_create_request(vault, "praxis-mueller", "access", phone=ALICE.phone, actor=STAFF)
    async with FakeTwilio.serve() as twilio:
        sent = await dsar.do_send_code(vault, view.id, _sender_for(twilio), actor=STAFF)
        assert sent.state == "identity_verification" and sent.verification == "code_sent"
        assert len(twilio.messages) == 1
        msg = twilio.messages[0]
        assert (msg.to, msg.from_) == (ALICE.phone, "+4969123456780")
        code = re.search(r"\b(\d{6})\b", msg.body)
        assert code is not None
    row = await _row(vault, view.id)
    assert code.group(1) not in json.dumps(row.verification), "the code is stored only as a keyed hash"
    wrong = "000000" if code.group(1) != "000000" else "111111"
    with pytest.raises(AuthenticationError, match="2 attempts left"):
        await dsar.do_check_code(vault, view.id, wrong, actor="caller")
    assert (await _row(vault, view.id)).verification["attempts"] == 1, "a wrong attempt is committed"
    done = await dsar.do_check_code(vault, view.id, code.group(1), actor="caller")
    assert (done.state, done.verification, done.verification_method) == ("in_progress", "verified", "sms")
    actions = [e.action for e in await _audit(vault)]
    assert actions == ["dsar.receive", "dsar.code_sent", "dsar.verify_failed", "dsar.verify"]
    _no_personal_data(await _audit(vault), ALICE.phone, code.group(1))


@pytest.mark.req("R-8.7")
async def test_three_wrong_codes_lock_and_an_expired_code_fails(vault: Vault, clock: FixedClock) -> None:
    await make_tenant(vault)
    view = await dsar.do_create_request(vault, "praxis-mueller", "access", phone=ALICE.phone, actor=STAFF)
    async with FakeTwilio.serve() as twilio:
        await dsar.do_send_code(vault, view.id, _sender_for(twilio), actor=STAFF)
        first = re.findall(r"\d{6}", twilio.messages[0].body)[0]
        clock.advance(dt.timedelta(minutes=10, seconds=1))
        with pytest.raises(AuthenticationError, match="expired"):
            await dsar.do_check_code(vault, view.id, first, actor="caller")
        await dsar.do_send_code(vault, view.id, _sender_for(twilio), actor=STAFF)
        second = re.findall(r"\d{6}", twilio.messages[1].body)[0]
    wrong = "123456" if second != "123456" else "654321"
    with pytest.raises(AuthenticationError, match="1 attempts left"):
        await dsar.do_check_code(vault, view.id, wrong, actor="caller")
    with pytest.raises(AuthenticationError, match="locked"):
        await dsar.do_check_code(vault, view.id, "12345x", actor="caller")
    with pytest.raises(ConflictError, match="locked"):
        await dsar.do_check_code(vault, view.id, second, actor="caller")
    assert (await _row(vault, view.id)).state == "identity_verification"
    confirmed = await dsar.do_confirm_by_staff(vault, view.id, actor=STAFF)
    assert (confirmed.state, confirmed.verification_method) == ("in_progress", "staff")
    last = (await _audit(vault))[-1]
    assert (last.action, last.actor, last.details) == ("dsar.verify", STAFF, {"method": "staff"})
    assert (await _row(vault, view.id)).verification["verified_by"] == STAFF


@pytest.mark.req("R-8.7")
async def test_a_request_said_during_a_call_is_not_verified_by_caller_id(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    alice = await seed_person(vault, tenant, ALICE, slot=thursday(9))
    row = await _row(vault, alice.dsar_id)
    assert (row.channel, row.state, row.subject_id) == ("call", "received", alice.subject_id)
    assert row.verification.get("caller_number_matches") is True
    with pytest.raises(ConflictError, match="verify the identity first"):
        await do_export(vault, alice.dsar_id, vault.blobs.root.parent / "x.zip",  # type: ignore[attr-defined]
                        actor=STAFF, processors=[])
    views = await dsar.list_requests(vault, actor=STAFF, request_id=alice.dsar_id)
    assert views[0].verification == "pending" and views[0].state == "received"
    assert views[0].due_on == dt.date(2026, 12, 28)
    verified = await dsar.do_confirm_by_staff(vault, alice.dsar_id, actor=STAFF)
    assert verified.state == "in_progress"


@pytest.mark.req("R-8.7")
async def test_extension_with_reason_and_refusal_with_reason(vault: Vault, clock: FixedClock) -> None:
    await make_tenant(vault)
    view = await dsar.do_create_request(vault, "praxis-mueller", "access", phone=ALICE.phone, actor=STAFF)
    with pytest.raises(InvalidInputError):
        await dsar.do_extend(vault, view.id, 1, "  ", actor=STAFF)
    extended = await dsar.do_extend(vault, view.id, 1, "many archived calls to review", actor=STAFF)
    assert extended.extended and extended.due_on == rules.due_date(dt.date(2026, 11, 25), "DE-HE", 1)
    extended = await dsar.do_extend(vault, view.id, 1, "second archive", actor=STAFF)
    assert extended.due_on == dt.date(2027, 2, 25)  # receipt + 1 + 2 months
    row = await _row(vault, view.id)
    assert row.extension_reason == "many archived calls to review\nsecond archive"
    with pytest.raises(InvalidInputError):
        await dsar.do_extend(vault, view.id, 1, "a third one", actor=STAFF)
    refused = await dsar.do_refuse(vault, view.id, "manifestly unfounded (Art. 12(5))", actor=STAFF)
    assert (refused.state, refused.refusal_reason) == ("refused", "manifestly unfounded (Art. 12(5))")
    assert (await _row(vault, view.id)).completed_at == clock.now()
    with pytest.raises(ConflictError):
        await dsar.do_confirm_by_staff(vault, view.id, actor=STAFF)
    audit = await _audit(vault)
    assert [e.action for e in audit][-3:] == ["dsar.extend", "dsar.extend", "dsar.refuse"]
    _no_personal_data(audit, "archived calls", "unfounded")


@pytest.mark.req("R-8.7")
async def test_reminders_are_logged_without_a_mailer_and_mailed_once_with_one(
    vault: Vault, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    await make_tenant(vault)
    view = await dsar.do_create_request(vault, "praxis-mueller", "access", phone=ALICE.phone, actor=STAFF)
    report = await dsar.send_dsar_reminders(vault, clock.now())
    assert (report.checked, report.logged, report.emailed) == (1, 0, 0)
    clock.at = dt.datetime(2026, 12, 21, 8, 0, tzinfo=dt.UTC)  # 7 days before 28 Dec
    with caplog.at_level(logging.WARNING, logger="voicedesk.privacy.dsar"):
        report = await dsar.send_dsar_reminders(vault, clock.now())
    assert (report.logged, report.request_ids) == (1, [view.id])
    assert str(view.id) in caplog.text and ALICE.phone not in caplog.text
    assert (await dsar.send_dsar_reminders(vault, clock.now())).logged == 0, "each reminder once"
    clock.at = dt.datetime(2026, 12, 24, 8, 0, tzinfo=dt.UTC)  # the 2-day reminder moves to the working day before
    with FakeSmtp.serve() as smtp:
        mailer = SmtpEmail(host=smtp.host, port=smtp.port, security="none", sender="voicedesk@example.org")
        report = await dsar.send_dsar_reminders(vault, clock.now(), mailer=mailer)
        assert report.emailed == 1
        mail = smtp.messages[0]
        assert mail["To"] == "datenschutz@praxis-mueller.example"
        body = mail.get_content()
        assert str(view.id) in body and "2026-12-28" in body and ALICE.phone not in body
        clock.at = dt.datetime(2026, 12, 29, 8, 0, tzinfo=dt.UTC)
        report = await dsar.send_dsar_reminders(vault, clock.now(), mailer=mailer)
        assert (report.emailed, report.overdue) == (1, 1)
        assert "ÜBERFÄLLIG" in smtp.messages[1].get_content()
    reminders = [e for e in await _audit(vault) if e.action == "dsar.reminder"]
    assert [e.details["channel"] for e in reminders] == ["log", "email", "email"]


@pytest.mark.req("R-8.2")
async def test_rectification_changes_contact_fields_and_audits_field_names_only(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    alice = await seed_person(vault, tenant, ALICE, slot=thursday(9))
    view = await dsar.do_create_request(vault, "praxis-mueller", "rectification", phone=ALICE.phone, actor=STAFF)
    with pytest.raises(ConflictError):
        await dsar.do_rectify(vault, view.id, {"last_name": "Quastenberg-Ilse"}, actor=STAFF)
    await dsar.do_confirm_by_staff(vault, view.id, actor=STAFF)
    with pytest.raises(InvalidInputError):
        await dsar.do_rectify(vault, view.id, {"shoe_size": "42"}, actor=STAFF)
    done = await dsar.do_rectify(vault, view.id, {"last_name": "Quastenberg-Ilse", "phone": "0176 99990000",
                                                  "company": ""}, actor=STAFF)
    assert done.state == "completed"
    async with vault.db.sessions() as s:
        contact = await subject_repo.get_contact(s, tenant.id, alice.subject_id)
        assert contact is not None
        data = await subject_repo.read_contact(vault.keys, contact)
        by_new = await subject_repo.find_subject_by_phone(s, vault.keys, tenant.id, "+4917699990000")
    assert (data.first_name, data.last_name, data.phone, data.company) == (
        "Adelheid", "Quastenberg-Ilse", "+4917699990000", None)
    assert by_new is not None and by_new.id == alice.subject_id
    entry = (await _audit(vault, "dsar.rectify"))[-1]
    assert entry.details["fields"] == ["company", "last_name", "phone"]
    _no_personal_data([entry], "Ilse", "99990000", "Quastenberg")


@pytest.mark.req("R-8.4")
async def test_restriction_stops_lookup_and_personalisation_until_lifted(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    await seed_person(vault, tenant, ALICE, slot=thursday(9))
    assert await recognise_caller(vault, tenant.id, ALICE.phone, actor="t") == ALICE.name
    view = await dsar.do_create_request(vault, "praxis-mueller", "restriction", phone=ALICE.phone, actor=STAFF)
    with pytest.raises(ConflictError):
        await dsar.do_restrict(vault, view.id, actor=STAFF)
    await dsar.do_confirm_by_staff(vault, view.id, actor=STAFF)
    with pytest.raises(ConflictError):
        await dsar.do_restrict(vault, view.id, actor=STAFF, lift=True)
    done = await dsar.do_restrict(vault, view.id, actor=STAFF)
    assert done.state == "completed"
    assert await recognise_caller(vault, tenant.id, ALICE.phone, actor="t") is None
    # Data is kept: a second request still finds the (restricted) person.
    again = await dsar.do_create_request(vault, "praxis-mueller", "access", phone=ALICE.phone, actor=STAFF)
    assert (await _row(vault, again.id)).subject_id == (await _row(vault, view.id)).subject_id
    await dsar.do_restrict(vault, view.id, actor=STAFF, lift=True)
    assert await recognise_caller(vault, tenant.id, ALICE.phone, actor="t") == ALICE.name
    assert [e.action for e in await _audit(vault)][-1] == "dsar.restriction_lift"


@pytest.mark.req("R-8.6")
async def test_objection_and_consent_withdrawal_are_recorded_for_the_future(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    alice = await seed_person(vault, tenant, ALICE, slot=thursday(9))
    objection = await dsar.do_create_request(vault, "praxis-mueller", "objection", phone=ALICE.phone, actor=STAFF)
    await dsar.do_confirm_by_staff(vault, objection.id, actor=STAFF)
    with pytest.raises(ConflictError):
        await dsar.do_withdraw(vault, objection.id, actor=STAFF)
    assert (await dsar.do_object(vault, objection.id, actor=STAFF)).state == "completed"
    withdrawal = await dsar.do_create_request(vault, "praxis-mueller", "withdrawal", phone=ALICE.phone, actor=STAFF)
    await dsar.do_confirm_by_staff(vault, withdrawal.id, actor=STAFF)
    with pytest.raises(InvalidInputError):
        await dsar.do_withdraw(vault, withdrawal.id, actor=STAFF, purposes=["marketing"])
    await dsar.do_withdraw(vault, withdrawal.id, actor=STAFF, purposes=["recording"])
    async with vault.db.sessions() as s:
        subject = await s.get(Subject, alice.subject_id)
        consents = (await s.scalars(select(Consent).where(Consent.subject_id == alice.subject_id)
                                    .order_by(Consent.decided_at))).all()
        withdrawn = await dsar.withdrawn_purposes(s, tenant.id, alice.subject_id)
    assert subject is not None and subject.objected is True
    assert withdrawn == {"recording"}
    call_level = [(c.purpose, c.decision) for c in consents if c.call_id == alice.call_id]
    assert sorted(call_level) == [("recording", "granted"), ("transcription", "granted")], "the past stays"
    new = [c for c in consents if c.call_id is None]
    assert [(c.purpose, c.decision, c.method, c.reason) for c in new] == [
        ("recording", "withdrawn", "request", f"dsar:{withdrawal.id}")]


@pytest.mark.req("R-8.7")
@pytest.mark.req("R-11.3")
async def test_another_tenants_request_is_not_found_like_a_missing_one(vault: Vault) -> None:
    await make_tenant(vault)
    other = await make_tenant(vault, slug="harbor-auto")
    view = await dsar.do_create_request(vault, "praxis-mueller", "access", phone=ALICE.phone, actor=STAFF)
    async with vault.db.sessions() as s:
        with pytest.raises(NotFoundError) as foreign:
            await dsar.access_request(s, view.id, tenant_id=other.id)
        with pytest.raises(NotFoundError) as missing:
            await dsar.access_request(s, uuid.uuid4(), tenant_id=other.id)
    assert foreign.value.to_dict() == missing.value.to_dict()
    with pytest.raises(NotFoundError):
        await dsar.do_confirm_by_staff(vault, view.id, actor=STAFF, tenant_id=other.id)
    mine = await dsar.list_requests(vault, actor=STAFF, tenant_slug="harbor-auto")
    assert mine == []


@pytest.mark.req("R-14")
@pytest.mark.req("R-4.2")
async def test_consent_records_of_a_call_point_to_the_text_version_heard(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    other = await make_tenant(vault, slug="harbor-auto")
    alice = await seed_person(vault, tenant, ALICE, slot=thursday(9))
    by_sid = await list_call_consents(vault, alice.call_sid, actor=STAFF)
    by_id = await list_call_consents(vault, str(alice.call_id), actor=STAFF)
    assert by_sid == by_id and by_sid.call_id == alice.call_id
    assert [(r.purpose, r.decision, r.method, r.hash_matches) for r in by_sid.records] == [
        ("recording", "granted", "key", True), ("transcription", "granted", "key", True)]
    assert sorted((t.kind, t.language, t.version) for t in by_sid.heard) == [
        ("announcement", "de", 1), ("consent_question", "de", 1)]
    assert any("KI-Assistenten" in t.text for t in by_sid.heard)
    with pytest.raises(NotFoundError) as foreign:
        await list_call_consents(vault, alice.call_sid, actor=STAFF, tenant_id=other.id)
    with pytest.raises(NotFoundError) as missing:
        await list_call_consents(vault, "CA" + "0" * 32, actor=STAFF)
    assert foreign.value.to_dict() == missing.value.to_dict()
    entries = await _audit(vault, "consent.read")
    assert [e.details for e in entries] == [{"count": 2}, {"count": 2}]
