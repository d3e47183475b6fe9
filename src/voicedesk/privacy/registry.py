"""The processor registry (R-5.2, R-6.1, R-12.1): who receives personal data, derived from the config.

Only adapters that are actually configured appear: Twilio when an account SID is set, an
SMTP relay when ``smtp_host`` points somewhere else than this machine, an LLM when the
dialogue engine is ``llm`` and its endpoint is not local, ElevenLabs when it is switched
on. Local engines (Whisper, piper, espeak-ng, the rule engine) are not processors.

Each adapter declares what it sends out (``PROCESSOR`` mappings next to the adapter code,
e.g. ``telephony.twilio.rest.PROCESSOR``); the outer ring passes those declarations in
(``declarations={"twilio": rest.PROCESSOR}``) because this service package may not import
the outer ring. The built-in declarations below are the fallback and the source of the
transfer safeguards and documents, which the adapters do not know.

Locations are decided from configuration: Twilio's region (``ie1`` is Ireland, anything
else the USA — an edge location only changes where traffic enters), an LLM's host (a
small table of known providers, otherwise *unknown*, which counts as outside the EU), an
optional ``smtp_location``/``llm_location`` setting. ``eu_only_status`` says whether the
deployment sends personal data only to EU processors and why.

New processors are announced to every tenant 30 days ahead with the right to object
(``announce_new_processors``); the processors in force when a tenant is first seen are
its baseline. Every change is audited by processor key, never with personal data.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from voicedesk.config import Settings
from voicedesk.domain.errors import NotFoundError
from voicedesk.domain.profile import TenantProfile
from voicedesk.store.models import ProcessorNotice, Tenant, User
from voicedesk.store.repos.tenants import list_tenants, profile_of
from voicedesk.store.vault import Vault

__all__ = [
    "NOTICE_DAYS",
    "AiModel",
    "Announcement",
    "Mailer",
    "Processor",
    "Zone",
    "ai_models",
    "announce_new_processors",
    "build_registry",
    "do_object_to_processor",
    "eu_only_status",
    "processor_status",
]

NOTICE_DAYS = 30
SYSTEM = "system:processor-registry"

EU_COUNTRIES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
    "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
})
EEA_EXTRA = frozenset({"IS", "LI", "NO"})


class Zone(enum.StrEnum):
    """Where a processor handles the data, as far as the transfer rules are concerned."""

    EU = "eu"                      # EU/EEA: no third-country transfer
    THIRD_COUNTRY = "third_country"
    UNKNOWN = "unknown"            # not declared: treated as outside the EU


@dataclass(frozen=True)
class Processor:
    """One processor (Art. 28 GDPR) as the running configuration uses it."""

    key: str
    name: str
    purpose: str
    location: str
    zone: Zone
    transfer_safeguard: str
    data_categories: tuple[str, ...]
    safeguard_documents: tuple[str, ...] = ()
    contract_status: str = "unknown: conclude a data processing agreement (Art. 28 GDPR)"
    no_training: str | None = None
    reason: str = ""

    @property
    def in_eu(self) -> bool:
        return self.zone is Zone.EU

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "name": self.name, "purpose": self.purpose, "location": self.location,
            "zone": self.zone.value, "transfer_safeguard": self.transfer_safeguard,
            "data_categories": list(self.data_categories), "safeguard_documents": list(self.safeguard_documents),
            "contract_status": self.contract_status, "no_training": self.no_training,
        }


_DPF_SCC = ("EU-US Data Privacy Framework (adequacy decision of 10 July 2023) and standard contractual clauses "
            "(Art. 46(2)(c) GDPR); transfer impact assessment")
_NONE_EU = "none needed: processing in the EU/EEA"

_BUILTIN: dict[str, Processor] = {
    "twilio": Processor(
        key="twilio", name="Twilio Inc.", purpose="telephony: carrying calls, call control, SMS confirmations",
        location="USA (US1 region)", zone=Zone.THIRD_COUNTRY, transfer_safeguard=_DPF_SCC,
        data_categories=("phone numbers", "call metadata", "call audio", "SMS content"),
        safeguard_documents=("https://www.twilio.com/en-us/legal/data-protection-addendum",
                             "https://www.twilio.com/en-us/legal/privacy"),
        contract_status="Twilio Data Protection Addendum (part of the Twilio terms) incl. SCCs",
    ),
    "elevenlabs": Processor(
        key="elevenlabs", name="ElevenLabs Inc.", purpose="speech synthesis of the assistant's replies",
        location="USA / United Kingdom", zone=Zone.THIRD_COUNTRY, transfer_safeguard=_DPF_SCC,
        data_categories=("conversation content (assistant replies)",),
        safeguard_documents=("https://elevenlabs.io/dpa", "https://elevenlabs.io/privacy"),
        contract_status="ElevenLabs DPA; zero-retention mode requested per request",
        no_training="zero-retention mode (enable_logging=false): no storage, no training",
    ),
    "smtp": Processor(
        key="smtp", name="E-mail relay", purpose="e-mail: appointment confirmations, reminders, notices",
        location="unknown", zone=Zone.UNKNOWN, transfer_safeguard="unknown: declare the relay's location",
        data_categories=("e-mail addresses", "names", "appointment details"),
    ),
    "llm": Processor(
        key="llm", name="LLM provider", purpose="dialogue: generating the assistant's replies",
        location="unknown", zone=Zone.UNKNOWN, transfer_safeguard="unknown: declare the provider's location",
        data_categories=("conversation content (transcribed caller speech)", "names and contact details said "
                         "in the call"),
        no_training="requests ask the provider not to store or train on them (store=false); "
                    "confirm no-training in the provider contract",
    ),
}

_KNOWN_LLM_HOSTS: dict[str, tuple[str, str, Zone]] = {
    "api.openai.com": ("OpenAI, L.L.C.", "USA", Zone.THIRD_COUNTRY),
    "eu.api.openai.com": ("OpenAI Ireland Ltd (EU data residency)", "EU", Zone.EU),
    "api.anthropic.com": ("Anthropic PBC", "USA", Zone.THIRD_COUNTRY),
    "api.mistral.ai": ("Mistral AI SAS", "France (EU)", Zone.EU),
    "api.groq.com": ("Groq, Inc.", "USA", Zone.THIRD_COUNTRY),
    "api.together.xyz": ("Together Computer, Inc.", "USA", Zone.THIRD_COUNTRY),
}


def _is_local(host: str | None) -> bool:
    """This machine or a private network: self-hosted, so not a processor."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in {"localhost", "localhost.localdomain"} or host.endswith((".local", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def _zone_of(declared: str | None) -> tuple[Zone, str] | None:
    if not declared:
        return None
    code = declared.strip().upper()
    if code in {"EU", "EEA", "EWR"} or code in EU_COUNTRIES or code in EEA_EXTRA:
        return Zone.EU, declared.strip()
    return Zone.THIRD_COUNTRY, declared.strip()


def _from_declaration(base: Processor, declared: Mapping[str, object] | None) -> Processor:
    """Merge an adapter's ``PROCESSOR`` mapping (name, purpose, data categories) into the built-in entry."""
    if not declared:
        return base
    cats = declared.get("data_categories")
    return replace(
        base,
        name=str(declared.get("name") or base.name),
        purpose=str(declared.get("purpose") or base.purpose),
        data_categories=tuple(str(c) for c in cats) if isinstance(cats, list | tuple) else base.data_categories,
    )


def _documents(base: Processor, documents_dir: Path | None) -> Processor:
    """Signed copies an operator keeps under ``<documents_dir>/<key>/`` are listed with the links."""
    if documents_dir is None:
        return base
    folder = documents_dir / base.key.split(":", 1)[0]
    files = tuple(sorted(str(p) for p in folder.iterdir() if p.is_file())) if folder.is_dir() else ()
    return replace(base, safeguard_documents=base.safeguard_documents + files)


def build_registry(
    settings: Settings, *, declarations: Mapping[str, Mapping[str, object]] | None = None,
    documents_dir: Path | None = None,
) -> list[Processor]:
    """The processors the running configuration sends personal data to, in a stable order."""
    declarations = declarations or {}
    docs = documents_dir if documents_dir is not None else settings.data_dir / "safeguards"
    out: list[Processor] = []

    if settings.twilio_account_sid:
        twilio = _from_declaration(_BUILTIN["twilio"], declarations.get("twilio"))
        region = (settings.twilio_region or "us1").lower()
        edge = f", edge {settings.twilio_edge}" if settings.twilio_edge else ""
        if region == "ie1":
            twilio = replace(twilio, location=f"Ireland (Twilio IE1 region{edge})", zone=Zone.EU,
                             transfer_safeguard="processing in the EU (IE1); remote access by the US parent "
                                                "covered by " + _DPF_SCC,
                             reason="VOICEDESK_TWILIO_REGION=ie1")
        else:
            twilio = replace(twilio, location=f"USA (Twilio {region.upper()} region{edge})",
                             reason=f"VOICEDESK_TWILIO_REGION={settings.twilio_region or 'unset (us1)'}")
        out.append(twilio)

    if settings.smtp_host and not _is_local(settings.smtp_host):
        smtp = replace(_from_declaration(_BUILTIN["smtp"], declarations.get("smtp")), key=f"smtp:{settings.smtp_host}",
                       name=f"E-mail relay {settings.smtp_host}", reason=f"VOICEDESK_SMTP_HOST={settings.smtp_host}")
        zone = _zone_of(getattr(settings, "smtp_location", None))
        if zone is not None:
            smtp = replace(smtp, zone=zone[0], location=zone[1],
                           transfer_safeguard=_NONE_EU if zone[0] is Zone.EU else smtp.transfer_safeguard)
        out.append(smtp)

    if settings.dialogue_engine == "llm":
        host = urlsplit(settings.llm_base_url or "").hostname
        if not _is_local(host):
            llm = replace(_from_declaration(_BUILTIN["llm"], declarations.get("llm")), key=f"llm:{host or 'unset'}",
                          reason=f"VOICEDESK_DIALOGUE_ENGINE=llm, VOICEDESK_LLM_BASE_URL host {host or 'unset'}")
            known = _KNOWN_LLM_HOSTS.get(host or "")
            if known is not None:
                llm = replace(llm, name=known[0], location=known[1], zone=known[2],
                              transfer_safeguard=_NONE_EU if known[2] is Zone.EU else _DPF_SCC + " (if certified)")
            else:
                llm = replace(llm, name=f"LLM provider at {host or 'an unset URL'}")
            zone = _zone_of(getattr(settings, "llm_location", None))
            if zone is not None:
                llm = replace(llm, zone=zone[0], location=zone[1],
                              transfer_safeguard=_NONE_EU if zone[0] is Zone.EU else llm.transfer_safeguard)
            out.append(llm)

    if getattr(settings, "tts_engine", "local") == "elevenlabs" or getattr(settings, "elevenlabs_api_key", None):
        out.append(replace(_from_declaration(_BUILTIN["elevenlabs"], declarations.get("elevenlabs")),
                           reason="ElevenLabs speech synthesis configured"))

    return [_documents(p, docs) for p in out]


def eu_only_status(settings: Settings, registry: Iterable[Processor] | None = None) -> tuple[bool, list[str]]:
    """Whether no personal data leaves the EU with this configuration, and the reasons (R-6.1)."""
    processors = list(registry) if registry is not None else build_registry(settings)
    reasons: list[str] = []
    outside = [p for p in processors if not p.in_eu]
    for p in processors:
        where = "in the EU" if p.in_eu else ("location unknown, so treated as outside the EU"
                                            if p.zone is Zone.UNKNOWN else "outside the EU")
        reasons.append(f"{p.name} ({p.purpose.split(':')[0]}): {p.location} — {where} [{p.reason}]")
    english = "Moonshine" if settings.stt_engine_en == "moonshine" else "Whisper"
    reasons.append(f"speech recognition: local {english} (en) and Whisper (de), no processor")
    reasons.append("speech synthesis: local piper/espeak-ng, no processor")
    if settings.dialogue_engine == "rules":
        reasons.append("dialogue: local rule engine, no processor")
    elif not any(p.key.startswith("llm:") for p in processors):
        reasons.append("dialogue: LLM on this machine or a private network, no processor")
    eu_only = not outside
    if settings.eu_only and not eu_only:
        reasons.insert(0, "VOICEDESK_EU_ONLY is set, but these processors are outside the EU or undeclared: "
                          + ", ".join(p.name for p in outside))
    elif eu_only:
        reasons.insert(0, "EU-only: every processor in use handles personal data in the EU"
                          + ("" if processors else " (no processors configured at all)"))
    else:
        reasons.insert(0, "not EU-only (VOICEDESK_EU_ONLY is off): " + ", ".join(p.name for p in outside)
                          + " outside the EU")
    return eu_only, reasons


# --- AI models (R-12.1) ---------------------------------------------------------------------

@dataclass(frozen=True)
class AiModel:
    """An AI model the assistant uses, where it runs, and whether it is trained on conversations."""

    purpose: str
    engine: str
    model: str
    language: str | None
    runs: str
    trained_on_conversations: bool = False


def ai_models(settings: Settings, profile: TenantProfile | None = None) -> list[AiModel]:
    """The models in use (for one tenant's languages when ``profile`` is given). None is trained on calls."""
    languages = profile.all_languages if profile is not None else ["de", "en"]
    registry = {p.key.split(":", 1)[0]: p for p in build_registry(settings)}
    out: list[AiModel] = []
    for lang in languages:
        if lang == "en" and settings.stt_engine_en == "moonshine":
            out.append(AiModel("speech recognition", "onnxruntime", "Moonshine base (8-bit)", lang, "on this server"))
        else:
            model = "Whisper tiny.en (CTranslate2)" if lang == "en" else "Whisper base, multilingual (CTranslate2)"
            out.append(AiModel("speech recognition", "faster-whisper", model, lang, "on this server"))
    out.append(AiModel("voice activity detection", "silero-vad", "Silero VAD", None, "on this server"))
    for lang in languages:
        out.append(AiModel("speech synthesis", "piper" if lang == "en" else "espeak-ng",
                           "piper en_US joe (medium)" if lang == "en" else "espeak-ng German voice", lang,
                           "on this server"))
    if settings.dialogue_engine == "rules":
        out.append(AiModel("dialogue", "rules", "voicedesk rule engine (no machine-learned model)", None,
                           "on this server"))
    else:
        llm = registry.get("llm")
        out.append(AiModel("dialogue", "llm (OpenAI-compatible)", settings.llm_model or "unset", None,
                           llm.location if llm else "on this machine or a private network"))
    return out


# --- announcements (R-5.2) ------------------------------------------------------------------

class Mailer(Protocol):
    """Sends one e-mail (``integrations.email`` provides the SMTP implementation)."""

    async def send(self, *, to: str, subject: str, body: str) -> None: ...


@dataclass
class Announcement:
    """A change announced to one tenant (``baseline`` entries take effect at once)."""

    tenant_slug: str
    processor: str
    kind: str  # baseline | announced | removed
    effective_at: dt.datetime | None = None
    mailed_to: list[str] = field(default_factory=list)


def _notice_text(profile: TenantProfile, p: Processor, effective: dt.datetime) -> tuple[str, str]:
    day = effective.date().isoformat()
    if profile.language == "de":
        subject = f"voicedesk: neuer Auftragsverarbeiter ab {day}: {p.name}"
        body = (f"Guten Tag,\n\nab dem {day} setzt voicedesk für {profile.name} einen neuen "
                "Auftragsverarbeiter ein:\n\n"
                f"  {p.name}\n  Zweck: {p.purpose}\n  Standort: {p.location}\n"
                f"  Garantien bei Drittlandübermittlung: {p.transfer_safeguard}\n"
                f"  Datenkategorien: {', '.join(p.data_categories)}\n\n"
                f"Sie können dieser Änderung bis zum {day} widersprechen. Eine Kopie der Garantien senden wir "
                "Ihnen auf Anfrage.\n")
    else:
        subject = f"voicedesk: new processor from {day}: {p.name}"
        body = (f"Hello,\n\nfrom {day} voicedesk will use a new processor for {profile.name}:\n\n"
                f"  {p.name}\n  Purpose: {p.purpose}\n  Location: {p.location}\n"
                f"  Transfer safeguard: {p.transfer_safeguard}\n"
                f"  Data categories: {', '.join(p.data_categories)}\n\n"
                f"You may object to this change until {day}. A copy of the safeguards is available on request.\n")
    return subject, body


async def _recipients(vault: Vault, tenant: Tenant, profile: TenantProfile) -> list[str]:
    async with vault.db.sessions() as s:
        users = (await s.scalars(select(User.email).where(User.tenant_id == tenant.id, User.role.in_(["owner", "dpo"]),
                                                           User.disabled_at.is_(None)))).all()
    found = [profile.controller.email] if profile.controller and profile.controller.email else []
    return list(dict.fromkeys([*found, *users]))


async def announce_new_processors(
    vault: Vault, settings: Settings, now: dt.datetime, *, mailer: Mailer | None = None,
    registry: list[Processor] | None = None, notice_days: int = NOTICE_DAYS,
) -> list[Announcement]:
    """Compare the registry with what each tenant was told; announce, baseline or retract. Audited.

    A tenant seen for the first time gets the current processors as its baseline
    (effective at once). A processor new since then is announced ``notice_days`` ahead,
    by e-mail to the controller, owners and DPOs when a mailer is configured; it may be
    used for that tenant from the effective date unless the tenant objects. A processor
    that is no longer configured is retracted.
    """
    processors = {p.key: p for p in (registry if registry is not None else build_registry(settings))}
    done: list[Announcement] = []
    async with vault.db.sessions() as s:
        tenants = await list_tenants(s)
    for tenant in tenants:
        profile = profile_of(tenant)
        async with vault.db.sessions() as s:
            notices = {n.processor: n for n in (await s.scalars(
                select(ProcessorNotice).where(ProcessorNotice.tenant_id == tenant.id))).all()}
        baseline = not notices
        new = [p for k, p in processors.items() if k not in notices]
        gone = [k for k in notices if k not in processors]
        effective = now if baseline else now + dt.timedelta(days=notice_days)
        async with vault.db.transaction() as s:
            for p in new:
                s.add(ProcessorNotice(id=uuid.uuid4(), tenant_id=tenant.id, processor=p.key[:64], announced_at=now,
                                      effective_at=effective))
            if gone:
                await s.execute(delete(ProcessorNotice).where(ProcessorNotice.tenant_id == tenant.id,
                                                              ProcessorNotice.processor.in_(gone)))
        for p in new:
            item = Announcement(tenant.slug, p.key, "baseline" if baseline else "announced", effective)
            if not baseline and mailer is not None:
                subject, body = _notice_text(profile, p, effective)
                for to in await _recipients(vault, tenant, profile):
                    await mailer.send(to=to, subject=subject, body=body)
                    item.mailed_to.append(to)
            await vault.audit.record(
                actor=SYSTEM, action="processor.baseline" if baseline else "processor.announce", tenant_id=tenant.id,
                object_type="processor", object_id=p.key[:64],
                details={"effective_at": effective.isoformat(), "zone": p.zone.value,
                         "mailed": len(item.mailed_to)},
            )
            done.append(item)
        for key in gone:
            await vault.audit.record(actor=SYSTEM, action="processor.remove", tenant_id=tenant.id,
                                     object_type="processor", object_id=key[:64])
            done.append(Announcement(tenant.slug, key, "removed"))
    return done


async def processor_status(vault: Vault, tenant_id: uuid.UUID, key: str, now: dt.datetime) -> str:
    """``active``, ``pending`` (announced, notice running), ``objected`` or ``unannounced``."""
    async with vault.db.sessions() as s:
        notice = (await s.scalars(select(ProcessorNotice).where(ProcessorNotice.tenant_id == tenant_id,
                                                                ProcessorNotice.processor == key))).first()
    if notice is None:
        return "unannounced"
    if notice.objected_at is not None:
        return "objected"
    return "active" if notice.effective_at <= now else "pending"


async def do_object_to_processor(vault: Vault, tenant_id: uuid.UUID, key: str, *, actor: str) -> None:
    """Record a tenant's objection to an announced processor. Audited."""
    async with vault.db.transaction() as s:
        notice = (await s.scalars(select(ProcessorNotice).where(ProcessorNotice.tenant_id == tenant_id,
                                                                ProcessorNotice.processor == key))).first()
        if notice is None:
            raise NotFoundError("no such processor notice")
        notice.objected_at = vault.clock.now()
    await vault.audit.record(actor=actor, action="processor.object", tenant_id=tenant_id, object_type="processor",
                             object_id=key[:64])
