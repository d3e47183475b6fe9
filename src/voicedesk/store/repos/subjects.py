"""Subjects (persons per tenant) and their contact data, encrypted under the subject's DEK."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, fields

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.store.crypto import KeyRing
from voicedesk.store.models import Contact, Subject
from voicedesk.store.repos.base import get_owned


@dataclass
class ContactData:
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    company: str | None = None
    customer_ref: str | None = None

    @property
    def display_name(self) -> str | None:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or None


CONTACT_FIELDS = tuple(f.name for f in fields(ContactData))


async def add_subject(
    session: AsyncSession, keys: KeyRing, tenant_id: uuid.UUID, *, now: dt.datetime,
    phone: str | None = None, email: str | None = None,
) -> Subject:
    """A new person with a fresh data key; phone/e-mail only as blind indexes."""
    subject = Subject(
        id=uuid.uuid4(), tenant_id=tenant_id, key_id=await keys.new_data_key(tenant_id, now),
        phone_idx=await keys.blind_index(tenant_id, "phone", phone) if phone else None,
        email_idx=await keys.blind_index(tenant_id, "email", email) if email else None,
        created_at=now, last_contact_at=now,
    )
    session.add(subject)
    await session.flush()
    return subject


async def find_subject_by_phone(
    session: AsyncSession, keys: KeyRing, tenant_id: uuid.UUID, phone: str
) -> Subject | None:
    idx = await keys.blind_index(tenant_id, "phone", phone)
    q = select(Subject).where(Subject.tenant_id == tenant_id, Subject.phone_idx == idx).order_by(Subject.created_at)
    return (await session.scalars(q)).first()


async def find_subject_by_email(
    session: AsyncSession, keys: KeyRing, tenant_id: uuid.UUID, email: str
) -> Subject | None:
    idx = await keys.blind_index(tenant_id, "email", email)
    q = select(Subject).where(Subject.tenant_id == tenant_id, Subject.email_idx == idx).order_by(Subject.created_at)
    return (await session.scalars(q)).first()


async def get_subject(session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID) -> Subject:
    return await get_owned(session, Subject, tenant_id, subject_id)


async def get_contact(session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID) -> Contact | None:
    q = select(Contact).where(Contact.tenant_id == tenant_id, Contact.subject_id == subject_id)
    return (await session.scalars(q)).first()


async def upsert_contact(
    session: AsyncSession, keys: KeyRing, subject: Subject, data: ContactData, now: dt.datetime, *,
    source: str = "call",
) -> Contact:
    """Set the given (non-None) fields of the subject's contact; indexes follow phone/e-mail."""
    contact = await get_contact(session, subject.tenant_id, subject.id)
    if contact is None:
        contact = Contact(id=uuid.uuid4(), tenant_id=subject.tenant_id, subject_id=subject.id, source=source,
                          updated_at=now)
        session.add(contact)
    for name, value in asdict(data).items():
        if value is None:
            continue
        setattr(contact, f"{name}_enc", await keys.encrypt(
            subject.tenant_id, subject.key_id, value, table="contacts", row_id=contact.id, column=name))
    if data.phone:
        subject.phone_idx = await keys.blind_index(subject.tenant_id, "phone", data.phone)
    if data.email:
        subject.email_idx = await keys.blind_index(subject.tenant_id, "email", data.email)
    contact.updated_at = now
    await session.flush()
    return contact


async def read_contact(keys: KeyRing, contact: Contact) -> ContactData:
    values = {}
    for name in CONTACT_FIELDS:
        values[name] = await keys.decrypt(contact.tenant_id, getattr(contact, f"{name}_enc"), table="contacts",
                                          row_id=contact.id, column=name)
    return ContactData(**values)
