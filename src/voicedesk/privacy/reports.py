"""Generated privacy documents for a tenant (R-5.2, R-10.7): Art. 30 record and DPIA input.

Both are derived from what is actually running — the tenant's profile (controller,
consent mode, recording switch), its retention periods, the processor registry and the
EU-only status of the configuration, the AI models in use, end-to-end mode, the state of
the audit chain — so the documents cannot drift from the software. They are rendered as
Markdown and HTML (escaped, no external assets). They name categories, never persons.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import func, select

from voicedesk.config import Settings
from voicedesk.domain.retention import DataCategory
from voicedesk.privacy.registry import Processor, ai_models, build_registry, eu_only_status
from voicedesk.privacy.retention import tenant_retention
from voicedesk.store.models import LegalHold, Tenant
from voicedesk.store.repos.tenants import profile_of
from voicedesk.store.vault import Vault

__all__ = ["Document", "Section", "Table", "art30_record", "dpia_input", "render"]

Format = Literal["md", "html"]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Document:
    title: str
    intro: list[str]
    sections: list[Section]


# --- rendering ------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(doc: Document) -> str:
    out = [f"# {doc.title}", "", *[p + "\n" for p in doc.intro]]
    for sec in doc.sections:
        out += [f"## {sec.title}", ""]
        out += [p + "\n" for p in sec.paragraphs]
        if sec.items:
            out += [f"- {i}" for i in sec.items] + [""]
        for t in sec.tables:
            out.append("| " + " | ".join(_md_cell(h) for h in t.header) + " |")
            out.append("|" + "---|" * len(t.header))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _html(doc: Document) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(doc.title)}</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
           "td,th{border:1px solid #999;padding:.3em;vertical-align:top;text-align:left}</style>",
           "</head><body>", f"<h1>{e(doc.title)}</h1>", *[f"<p>{e(p)}</p>" for p in doc.intro]]
    for sec in doc.sections:
        out.append(f"<h2>{e(sec.title)}</h2>")
        out += [f"<p>{e(p)}</p>" for p in sec.paragraphs]
        if sec.items:
            out.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in sec.items) + "</ul>")
        for t in sec.tables:
            out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t.rows]
            out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render(doc: Document, fmt: Format = "md") -> str:
    """The document as Markdown (``md``) or a self-contained HTML page (``html``)."""
    return _html(doc) if fmt == "html" else _markdown(doc)


# --- facts from the running system ------------------------------------------------------------

@dataclass
class _Facts:
    tenant: Tenant
    settings: Settings
    registry: list[Processor]
    eu_only: bool
    eu_reasons: list[str]
    periods: dict[DataCategory, str]
    transcripts_after: str
    audit_ok: bool
    audit_checked: int
    active_holds: int
    now: dt.datetime


def _period(amount: int, unit: str) -> str:
    return f"{amount} {unit[:-1] if amount == 1 else unit}"


async def _facts(
    vault: Vault, settings: Settings, tenant_id: uuid.UUID, declarations: Mapping[str, Mapping[str, object]] | None,
) -> _Facts:
    async with vault.db.sessions() as s:
        tenant = await s.get_one(Tenant, tenant_id)
        holds = int(await s.scalar(select(func.count()).select_from(LegalHold).where(
            LegalHold.tenant_id == tenant_id, LegalHold.released_at.is_(None))) or 0)
    retention = tenant_retention(tenant)
    periods = {c: _period(*retention.policy.period(c)) for c in DataCategory}
    customer = periods[DataCategory.CUSTOMER_DATA]
    periods[DataCategory.CUSTOMER_DATA] = f"end of relationship (or last contact) + {customer}"
    registry = build_registry(settings, declarations=declarations)
    eu_only, reasons = eu_only_status(settings, registry)
    verify = await vault.audit.verify()
    return _Facts(tenant, settings, registry, eu_only, reasons, periods,
                  "redacted and kept for statistics" if retention.transcripts.value == "anonymise" else "deleted",
                  verify.ok, verify.checked, holds, vault.clock.now())


def _recipients(facts: _Facts, *keys: str) -> str:
    names = [p.name for p in facts.registry if p.key.split(":", 1)[0] in keys]
    return ", ".join(names) if names else "none (processed on this server only)"


def _activities(f: _Facts) -> Table:
    p = f.periods
    profile = profile_of(f.tenant)
    consent = "explicit question before anything is stored" if profile.consent_mode == "ask" else \
        "announcement with the right to object"
    rows = [
        ["Answering and documenting calls", "Art. 6(1)(b) GDPR (contract/pre-contract), Art. 6(1)(f) "
         "(reachability)", "callers", "phone number, caller-ID name, call times, duration, status, outcome, "
         "summary", _recipients(f, "twilio", "llm"),
         f"call metadata {p[DataCategory.CALL_METADATA]}, then anonymised"],
        ["Recording and transcribing conversations", f"Art. 6(1)(a) GDPR, consent ({consent}); withdrawal by "
         "voice or key at any time", "callers", "audio recording, transcript", _recipients(f, "twilio", "llm",
                                                                                            "elevenlabs"),
         f"recordings {p[DataCategory.RECORDINGS]}; transcripts {p[DataCategory.TRANSCRIPTS]}, then "
         f"{f.transcripts_after}"],
        ["Appointments, messages and callbacks", "Art. 6(1)(b) GDPR", "customers, callers",
         "name, contact details, appointment data, message text", _recipients(f, "twilio", "smtp"),
         p[DataCategory.CUSTOMER_DATA]],
        ["Data subject requests", "Art. 6(1)(c) GDPR with Art. 12-22", "requesters", "identity check data, "
         "request and its handling", _recipients(f, "twilio", "smtp"), p[DataCategory.CUSTOMER_DATA]],
        ["Access and audit log", "Art. 6(1)(c) and (f) GDPR, Art. 32", "staff users", "user id, action, object "
         "id, time (no call content)", "none", p[DataCategory.LOGS]],
    ]
    return Table(["processing activity", "legal basis", "data subjects", "personal data", "recipients (processors)",
                  "erasure"], rows)


def _processor_table(f: _Facts) -> Table:
    return Table(
        ["processor", "purpose", "location", "transfer safeguard", "data categories", "documents", "contract"],
        [[p.name, p.purpose, p.location, p.transfer_safeguard, ", ".join(p.data_categories),
          ", ".join(p.safeguard_documents) or "—", p.contract_status] for p in f.registry]
        or [["none", "—", "—", "—", "—", "—", "—"]],
    )


def _measures(f: _Facts) -> list[str]:
    profile = profile_of(f.tenant)
    separate_keys = f.settings.keys_url != f.settings.db_url or f.settings.keys_url.startswith("postgresql")
    items = [
        "Encryption at rest: AES-256-GCM for recordings, transcripts, contact data and call details, with "
        "envelope keys (master key → tenant key → one data key per person); ciphertexts are bound to their row "
        "and column.",
        "Crypto-shredding: erasing a person destroys their data key and writes a pseudonymous erasure-ledger "
        "entry that is replayed after any restore." + (" The key store is kept apart from the data."
                                                       if separate_keys else ""),
        f"Tamper-evident access log (HMAC hash chain with a signed head): {f.audit_checked} entries checked, "
        + ("intact." if f.audit_ok else "NOT intact — investigate before relying on it."),
        "Retention enforced by the scheduled sweep (batched, resumable, audited with counts only): "
        + "; ".join(f"{c.value.replace('_', ' ')} {v}" for c, v in f.periods.items()) + ".",
        f"Legal holds in force: {f.active_holds}.",
        f"Consent mode: {profile.consent_mode}; recording {'enabled' if profile.recording_enabled else 'disabled'}; "
        f"sentiment analysis {'on' if profile.sentiment_analysis else 'off'}.",
        "End-to-end encryption of recordings to a tenant-held key: "
        + ("on (the server cannot read new recordings)." if f.tenant.e2e_public_key else "off."),
        ("EU-only: yes. " if f.eu_only else "EU-only: no. ") + f.eu_reasons[0],
        "No automated decisions with legal effect (Art. 22): the assistant informs, books and documents; "
        "everything else goes to a human.",
        "Conversations are never used to train models; fine-tuning exports only with recorded explicit consent.",
        "Strict tenant isolation: every query is scoped to the tenant; the same error for missing and foreign ids.",
    ]
    return items


def _models_table(f: _Facts) -> Table:
    return Table(["purpose", "engine", "model", "language", "runs", "trained on calls"],
                 [[m.purpose, m.engine, m.model, m.language or "all", m.runs,
                   "yes" if m.trained_on_conversations else "no"]
                  for m in ai_models(f.settings, profile_of(f.tenant))])


def _controller(f: _Facts) -> list[str]:
    profile = profile_of(f.tenant)
    c = profile.controller
    items = [f"Controller: {c.name if c else profile.name}"
             + (f", {c.address}" if c and c.address else (f", {profile.address}" if profile.address else ""))
             + (f", {c.email}" if c and c.email else "")]
    sa = profile.supervisory_authority
    if sa is not None:
        items.append(f"Supervisory authority: {sa.name}" + (f", {sa.address}" if sa.address else ""))
    items.append("Processor of the telephony assistant: voicedesk (self-hosted) on the controller's behalf.")
    return items


async def art30_record(
    vault: Vault, settings: Settings, tenant_id: uuid.UUID, *,
    declarations: Mapping[str, Mapping[str, object]] | None = None,
) -> Document:
    """The record of processing activities (Art. 30(1) GDPR) of the tenant's telephone assistant."""
    f = await _facts(vault, settings, tenant_id, declarations)
    return Document(
        title=f"Record of processing activities (Art. 30 GDPR) — {f.tenant.name}",
        intro=[f"Verzeichnis von Verarbeitungstätigkeiten. Generated by voicedesk on {f.now.date().isoformat()} "
               "from the running configuration."],
        sections=[
            Section("Controller", items=_controller(f)),
            Section("Processing activities", tables=[_activities(f)]),
            Section("Recipients and third-country transfers", paragraphs=[
                "Processors as configured; a copy of the safeguards is available on request."],
                tables=[_processor_table(f)]),
            Section("Transfer status", items=f.eu_reasons),
            Section("AI models in use", tables=[_models_table(f)]),
            Section("Technical and organisational measures (Art. 32)", items=_measures(f)),
        ],
    )


_RISKS: Sequence[tuple[str, str, str, str]] = (
    ("Unauthorised access to recordings, transcripts or contact data", "medium", "high", "encryption"),
    ("Transfer of personal data to a third country", "depends on configuration", "high", "transfer"),
    ("Recording without valid consent", "low", "high", "consent"),
    ("Data kept longer than necessary", "medium", "medium", "retention"),
    ("Re-identification from anonymised statistics", "low", "medium", "anonymisation"),
    ("Misunderstanding by the AI leading to a wrong outcome for the caller", "medium", "medium", "human"),
    ("Use of conversations for model training", "low", "high", "training"),
    ("Tampering with or deleting the access log", "low", "high", "audit"),
    ("Erased data coming back with a restored backup", "low", "high", "shredding"),
    ("Another tenant reading or affecting the data", "low", "high", "isolation"),
)


def _risk_measure(f: _Facts, kind: str) -> str:
    measures = _measures(f)
    pick = {
        "encryption": [measures[0], measures[6]], "transfer": [measures[7]], "consent": [measures[5]],
        "retention": [measures[3], measures[4]], "anonymisation": [
            "call metadata keeps only date, rounded duration, status, direction, language and outcome category; "
            f"transcripts after their period are {f.transcripts_after}"],
        "human": [measures[8]], "training": [measures[9]], "audit": [measures[2]], "shredding": [measures[1]],
        "isolation": [measures[10]],
    }
    return " ".join(pick[kind])


async def dpia_input(
    vault: Vault, settings: Settings, tenant_id: uuid.UUID, *,
    declarations: Mapping[str, Mapping[str, object]] | None = None,
) -> Document:
    """Input for the data protection impact assessment (Art. 35): data map, risks, measures in force."""
    f = await _facts(vault, settings, tenant_id, declarations)
    p = f.periods
    storage = "encrypted database fields (AES-256-GCM, per-person keys)"
    rec_store = ("encrypted blob files, end-to-end to the tenant's key" if f.tenant.e2e_public_key
                 else "encrypted blob files (AES-256-GCM, per-person keys)")
    data_map = Table(["data", "source", "stored in", "retention", "leaves the server to"], [
        ["caller number, caller-ID name", "telephone network", storage,
         f"{p[DataCategory.CALL_METADATA]}, then anonymised", _recipients(f, "twilio")],
        ["call audio (live)", "caller", "memory only until consent", "—", _recipients(f, "twilio")],
        ["recordings", "caller, with consent", rec_store, p[DataCategory.RECORDINGS], "nobody"],
        ["transcripts", "speech recognition", storage, f"{p[DataCategory.TRANSCRIPTS]}, then {f.transcripts_after}",
         _recipients(f, "llm")],
        ["assistant replies (speech)", "dialogue engine", "not stored as audio", "—", _recipients(f, "elevenlabs")],
        ["contact and appointment data", "caller or staff", storage, p[DataCategory.CUSTOMER_DATA],
         _recipients(f, "twilio", "smtp")],
        ["consent records", "call", "database (decision, method, text version and hash)",
         "with the call; unlinked from the call when it is anonymised", "nobody"],
        ["access log", "staff and system", "hash-chained audit log (ids only)", p[DataCategory.LOGS], "nobody"],
    ])
    risks = Table(["risk", "likelihood", "severity", "measures in force"],
                  [[r, lk, sev, _risk_measure(f, kind)] for r, lk, sev, kind in _RISKS])
    return Document(
        title=f"DPIA input (Art. 35 GDPR) — {f.tenant.name}",
        intro=[f"Datenschutz-Folgenabschätzung: input generated by voicedesk on {f.now.date().isoformat()} from "
               "the running configuration. It describes the processing, maps the data, lists risks and the "
               "measures actually in force; the assessment itself is the controller's."],
        sections=[
            Section("Controller", items=_controller(f)),
            Section("Systematic description of the processing", tables=[_activities(f)]),
            Section("Data map", tables=[data_map]),
            Section("Processors and transfers", items=f.eu_reasons, tables=[_processor_table(f)]),
            Section("AI models in use", tables=[_models_table(f)]),
            Section("Necessity and proportionality", items=[
                "Calls are served without consent too; only metadata and the structured outcome are then kept.",
                "Audio is held in memory only until consent; withdrawal discards what was recorded of the call.",
                "Periods per category are enforced automatically; statistics survive only in anonymised form.",
                "Data subjects' rights are handled as a tracked workflow with deadlines.",
            ]),
            Section("Risks and measures", tables=[risks]),
            Section("Measures in force", items=_measures(f)),
        ],
    )
