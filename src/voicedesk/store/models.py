"""SQLAlchemy 2 models of the data store (the key store is separate: ``store/keystore.py``).

Columns ending in ``_enc`` hold AES-256-GCM ciphertext made by ``store.crypto`` under the
subject's data key, bound to (tenant, table, row id, column). Columns ending in ``_idx``
are blind indexes (HMAC with the tenant's index key). Nothing personal is stored in clear.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from typing_extensions import override

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores UTC, returns aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @override
    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    @override
    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


UUIDPk = Annotated[uuid.UUID, mapped_column(Uuid, primary_key=True, default=uuid.uuid4)]
TenantFk = Annotated[uuid.UUID, mapped_column(Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), index=True)]
Timestamp = Annotated[dt.datetime, mapped_column(UTCDateTime)]
Cipher = Annotated[bytes | None, mapped_column(LargeBinary, nullable=True)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[UUIDPk]
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    profile: Mapped[dict[str, Any]]
    twilio_auth_token_enc: Mapped[Cipher]
    e2e_public_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]


class PhoneNumber(Base):
    """A business number routed to a tenant (not personal data)."""

    __tablename__ = "phone_numbers"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    tenant_id: Mapped[TenantFk]
    language: Mapped[str] = mapped_column(String(5))


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret_enc: Mapped[Cipher]
    created_at: Mapped[Timestamp]
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[Any]]
    created_at: Mapped[Timestamp]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Subject(Base):
    """A person as seen by one tenant; owns the data key (DEK) of all their personal data."""

    __tablename__ = "subjects"
    __table_args__ = (
        Index("ix_subjects_tenant_phone", "tenant_id", "phone_idx"),
        Index("ix_subjects_tenant_email", "tenant_id", "email_idx"),
    )

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    phone_idx: Mapped[str | None] = mapped_column(String(64), nullable=True)
    email_idx: Mapped[str | None] = mapped_column(String(64), nullable=True)
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    objected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[Timestamp]
    last_contact_at: Mapped[Timestamp]
    relationship_ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    first_name_enc: Mapped[Cipher]
    last_name_enc: Mapped[Cipher]
    email_enc: Mapped[Cipher]
    phone_enc: Mapped[Cipher]
    address_enc: Mapped[Cipher]
    company_enc: Mapped[Cipher]
    customer_ref_enc: Mapped[Cipher]
    source: Mapped[str] = mapped_column(String(16), default="call")
    updated_at: Mapped[Timestamp]


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        # Also serves tenant_id alone (tenant deletion's cascade): no separate tenant_id index.
        Index("ix_calls_tenant_started", "tenant_id", "started_at", "id"),
        Index("ix_calls_tenant_status_started", "tenant_id", "status", "started_at", "id"),
        # Partial: only what their queries look for (calls still open on an instance, calls of a
        # subject), so anonymising a call takes it out of them instead of moving it.
        Index("ix_calls_live_instance", "instance_id", "ended_at",
              sqlite_where=text("instance_id IS NOT NULL AND ended_at IS NULL"),
              postgresql_where=text("instance_id IS NOT NULL AND ended_at IS NULL")),
        Index("ix_calls_subject_id", "subject_id", sqlite_where=text("subject_id IS NOT NULL"),
              postgresql_where=text("subject_id IS NOT NULL")),
    )

    id: Mapped[UUIDPk]
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id", ondelete="CASCADE"))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("subjects.id", ondelete="SET NULL"), nullable=True
    )
    provider: Mapped[str] = mapped_column(String(16), default="twilio")
    provider_call_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    direction: Mapped[str] = mapped_column(String(16), default="inbound")
    from_enc: Mapped[Cipher]
    caller_name_enc: Mapped[Cipher]
    to_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    language: Mapped[str] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[Timestamp]
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    instance_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    summary_enc: Mapped[Cipher]
    recording_consent: Mapped[str | None] = mapped_column(String(16), nullable=True)
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    twiml_answer: Mapped[str | None] = mapped_column(Text, nullable=True)


class Turn(Base):
    __tablename__ = "turns"
    # The unique (call_id, seq) index also serves call_id alone (the cascade from calls).
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    call_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(16))
    text_enc: Mapped[Cipher]
    tool_calls_enc: Mapped[Cipher]
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[Timestamp]
    redacted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Recording(Base):
    __tablename__ = "recordings"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    call_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    blob_key: Mapped[str] = mapped_column(String(200), unique=True)
    track: Mapped[str] = mapped_column(String(16), default="caller")
    channels: Mapped[int] = mapped_column(Integer, default=1)
    sample_rate: Mapped[int] = mapped_column(Integer, default=8000)
    codec: Mapped[str] = mapped_column(String(16), default="pcm_s16le")
    offset_ms: Mapped[int] = mapped_column(Integer, default=0)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    e2e: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[Timestamp]
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TextVersion(Base):
    """A version of an announcement or privacy-notice text; old versions stay readable (R-14)."""

    __tablename__ = "text_versions"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "language", "version"),)

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    kind: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(5))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[Timestamp]


class Consent(Base):
    __tablename__ = "consents"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    call_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("calls.id", ondelete="SET NULL"), nullable=True, index=True
    )
    subject_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("subjects.id", ondelete="SET NULL"), nullable=True, index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[Timestamp]
    text_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    text_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (Index("ix_appointments_tenant_start", "tenant_id", "start_at"),)

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    subject_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True, index=True
    )
    call_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("calls.id", ondelete="SET NULL"), nullable=True, index=True
    )
    service_id: Mapped[str] = mapped_column(String(64))
    staff_id: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[Timestamp]
    end_at: Mapped[Timestamp]
    status: Mapped[str] = mapped_column(String(16))
    notes_enc: Mapped[Cipher]
    preferences_enc: Mapped[Cipher]
    reminder_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]


class SlotLock(Base):
    """One row per booked grid unit per staff member: double booking fails on the primary key."""

    __tablename__ = "slot_locks"

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    appointment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )


class AppointmentEvent(Base):
    """History of an appointment: booked, rescheduled, cancelled, edited by staff."""

    __tablename__ = "appointment_events"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    appointment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(80))
    at: Mapped[Timestamp]
    data: Mapped[dict[str, Any]]


class Message(Base):
    """A message for staff, with a callback task."""

    __tablename__ = "messages"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    subject_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True, index=True
    )
    call_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("calls.id", ondelete="SET NULL"), nullable=True, index=True
    )
    name_enc: Mapped[Cipher]
    phone_enc: Mapped[Cipher]
    reason_enc: Mapped[Cipher]
    urgency: Mapped[str] = mapped_column(String(16), default="normal")
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[Timestamp]
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DsarRequest(Base):
    __tablename__ = "dsar_requests"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    subject_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("subjects.id", ondelete="SET NULL"), nullable=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[Timestamp]
    due_at: Mapped[Timestamp]
    extended_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    extension_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    verification: Mapped[dict[str, Any]]
    refusal_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    legal_basis: Mapped[str | None] = mapped_column(String(200), nullable=True)
    details_enc: Mapped[Cipher]
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LegalHold(Base):
    __tablename__ = "legal_holds"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    call_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[Timestamp]
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SweepRun(Base):
    """Progress of a retention sweep, so a killed sweep resumes where it stopped."""

    __tablename__ = "sweep_runs"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    started_at: Mapped[Timestamp]
    cutoff_at: Mapped[Timestamp]
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    progress: Mapped[dict[str, Any]]


class OutboxMessage(Base):
    """Outbound SMS/e-mail/webhook awaiting delivery (erasure removes a subject's entries)."""

    __tablename__ = "outbox"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    payload_enc: Mapped[Cipher]
    due_at: Mapped[Timestamp]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)


class UsedToken(Base):
    """Single-use media-stream tokens (by their id) until they expire."""

    __tablename__ = "used_tokens"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[Timestamp]


class WebhookEvent(Base):
    """Carrier callbacks already applied (dedupe key), so retries are no-ops."""

    __tablename__ = "webhook_events"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[Timestamp]


class AuditEntry(Base):
    """Append-only, hash-chained access log; names objects by id, never personal data."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[Timestamp]
    actor: Mapped[str] = mapped_column(String(120))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    object_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """Signed record of audit entries cut by retention, so the rest still verifies."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    through_seq: Mapped[int] = mapped_column(Integer)
    through_hash: Mapped[str] = mapped_column(String(64))
    entries_cut: Mapped[int] = mapped_column(Integer)
    at: Mapped[Timestamp]
    signature: Mapped[str] = mapped_column(String(64))


class ProcessorNotice(Base):
    """Announcement of a new processor to a tenant (30 days ahead, right to object)."""

    __tablename__ = "processor_notices"

    id: Mapped[UUIDPk]
    tenant_id: Mapped[TenantFk]
    processor: Mapped[str] = mapped_column(String(64))
    announced_at: Mapped[Timestamp]
    effective_at: Mapped[Timestamp]
    objected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
