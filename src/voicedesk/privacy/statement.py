"""The human-readable statement that goes with an access export (Art. 15(1)(a)–(h), R-8.1).

It tells the person what is held about them (categories with counts), why and on which
legal basis, who receives it (the processors, from the processor registry), for how long it
is kept (the tenant's retention settings), where it comes from, that no automated decision
is made, their rights, and the supervisory authority they may complain to (seed §4, §5,
§7–§9). German or English, as Markdown and as HTML (self-contained, no external assets).

``processors`` is whatever the composition root passes in — anything with ``name``,
``purpose``, ``location``, ``data_categories`` and ``transfer_safeguard`` (e.g.
``integrations.processors.Processor``), so the registry can be swapped.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from voicedesk.domain.profile import Party, TenantProfile

Language = Literal["de", "en"]


class ProcessorLike(Protocol):
    """A recipient of personal data as the registry declares it."""

    @property
    def name(self) -> str: ...

    @property
    def purpose(self) -> str: ...

    @property
    def location(self) -> str: ...

    @property
    def data_categories(self) -> Sequence[str]: ...

    @property
    def transfer_safeguard(self) -> str | None: ...


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)


@dataclass
class Statement:
    title: str
    language: Language
    intro: str
    sections: list[Section]

    def markdown(self) -> str:
        out = [f"# {self.title}", "", self.intro, ""]
        for s in self.sections:
            out += [f"## {s.title}", ""]
            for p in s.paragraphs:
                out += [p, ""]
            if s.bullets:
                out += [f"- {b}" for b in s.bullets] + [""]
        return "\n".join(out)

    def html(self) -> str:
        e = html.escape
        parts = [f'<!doctype html>\n<html lang="{self.language}">\n<head><meta charset="utf-8">'
                 f"<title>{e(self.title)}</title>"
                 "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.4}</style>"
                 f"</head>\n<body>\n<h1>{e(self.title)}</h1>\n<p>{e(self.intro)}</p>"]
        for s in self.sections:
            parts.append(f"<h2>{e(s.title)}</h2>")
            parts += [f"<p>{e(p)}</p>" for p in s.paragraphs]
            if s.bullets:
                parts.append("<ul>" + "".join(f"<li>{e(b)}</li>" for b in s.bullets) + "</ul>")
        parts.append("</body>\n</html>\n")
        return "\n".join(parts)


_T: dict[Language, dict[str, str]] = {
    "de": {
        "title": "Auskunft nach Art. 15 DSGVO",
        "intro": "Erstellt am {date} für die Anfrage {request}. Dieses Archiv enthält alle Daten, die {name} "
                 "über Sie gespeichert hat: data.json (vollständig, maschinenlesbar, Schema in schema.json), "
                 "dieselben Daten als CSV-Tabellen (Ordner csv/) und Gesprächsaufzeichnungen als WAV-Dateien "
                 "(Ordner audio/).",
        "controller": "Verantwortlicher",
        "held": "Welche Daten wir über Sie speichern",
        "purposes": "Zwecke und Rechtsgrundlagen",
        "recipients": "Empfänger (Auftragsverarbeiter)",
        "recipients_none": "Keine: die Daten werden ausschließlich auf den eigenen Systemen verarbeitet.",
        "recipients_intro": "Wir setzen folgende Dienstleister als Auftragsverarbeiter nach Art. 28 DSGVO ein. "
                            "Eine Kopie der Garantien für Übermittlungen in Drittländer erhalten Sie auf Anfrage.",
        "safeguard": "Garantie",
        "retention": "Speicherdauer",
        "source": "Herkunft der Daten",
        "source_text": "Die Daten stammen von Ihnen selbst (Ihre Anrufe, Ihre Angaben im Gespräch, Ihre "
                       "Terminbuchungen und Nachrichten), aus der Rufnummernübermittlung Ihres Telefonanbieters "
                       "(Rufnummer, ggf. Anrufername) und aus Eingaben unserer Mitarbeitenden.",
        "automated": "Automatisierte Entscheidungen",
        "automated_text": "Es findet keine automatisierte Entscheidung im Einzelfall einschließlich Profiling "
                          "(Art. 22 DSGVO) statt. Der KI-Assistent informiert, bucht Termine und dokumentiert; "
                          "alles Weitere entscheidet ein Mensch. Gespräche werden nicht zum Training von "
                          "KI-Modellen verwendet.",
        "rights": "Ihre Rechte",
        "authority": "Beschwerderecht bei der Aufsichtsbehörde",
        "authority_text": "Sie haben das Recht, sich bei einer Datenschutz-Aufsichtsbehörde zu beschweren "
                          "(Art. 77 DSGVO). Zuständig ist:",
        "authority_unknown": "die Datenschutz-Aufsichtsbehörde des Bundeslandes, in dem der Verantwortliche "
                             "seinen Sitz hat.",
        "days": "{n} Tage", "years_after": "Ende der Geschäftsbeziehung + {n} Jahre",
    },
    "en": {
        "title": "Access statement under Art. 15 GDPR",
        "intro": "Generated on {date} for request {request}. This archive contains all data {name} holds about "
                 "you: data.json (complete and machine-readable, schema in schema.json), the same data as CSV "
                 "tables (folder csv/) and call recordings as WAV files (folder audio/).",
        "controller": "Controller",
        "held": "What we hold about you",
        "purposes": "Purposes and legal bases",
        "recipients": "Recipients (processors)",
        "recipients_none": "None: the data is processed on our own systems only.",
        "recipients_intro": "We use the following service providers as processors under Art. 28 GDPR. You can "
                            "ask for a copy of the safeguards for transfers to third countries.",
        "safeguard": "safeguard",
        "retention": "How long we keep it",
        "source": "Where the data comes from",
        "source_text": "From you (your calls, what you said in them, your bookings and messages), from the caller "
                       "ID your phone provider transmits (number, possibly a caller name), and from entries by "
                       "our staff.",
        "automated": "Automated decisions",
        "automated_text": "No decision based solely on automated processing, including profiling (Art. 22 GDPR), "
                          "is made. The AI assistant informs, books appointments and documents; anything else is "
                          "decided by a person. Conversations are never used to train AI models.",
        "rights": "Your rights",
        "authority": "Right to lodge a complaint",
        "authority_text": "You have the right to lodge a complaint with a data protection supervisory authority "
                          "(Art. 77 GDPR). The competent authority is:",
        "authority_unknown": "the data protection authority of the state where the controller is established.",
        "days": "{n} days", "years_after": "end of the business relationship + {n} years",
    },
}

_CATEGORIES: dict[Language, dict[str, str]] = {
    "de": {"contact": "Kontaktdaten", "calls": "Anrufe (Rufnummer, Zeiten, Dauer, Status, Zusammenfassung)",
           "turns": "Gesprächsabschnitte (Transkript)", "recordings": "Gesprächsaufzeichnungen",
           "consents": "Einwilligungsnachweise", "appointments": "Termine", "messages": "Nachrichten/Rückrufwünsche",
           "dsar_requests": "Ihre Datenschutz-Anfragen"},
    "en": {"contact": "contact details", "calls": "calls (number, times, duration, status, summary)",
           "turns": "conversation turns (transcript)", "recordings": "call recordings",
           "consents": "consent records", "appointments": "appointments", "messages": "messages and callback requests",
           "dsar_requests": "your data protection requests"},
}

_PURPOSES: dict[Language, list[str]] = {
    "de": [
        "Annahme und Bearbeitung Ihrer Anrufe, Terminvereinbarung und -verwaltung, Nachrichten, Weiterleitung an "
        "Mitarbeitende und Gesprächsdokumentation — Vertragserfüllung bzw. vorvertragliche Maßnahmen "
        "(Art. 6 Abs. 1 lit. b DSGVO).",
        "Aufzeichnung und Transkription von Gesprächen — nur mit Ihrer ausdrücklichen Einwilligung "
        "(Art. 6 Abs. 1 lit. a DSGVO), jederzeit mit Wirkung für die Zukunft widerruflich.",
        "Systemsicherheit, Missbrauchsabwehr, Fehleranalyse und anonyme Statistiken — berechtigtes Interesse "
        "(Art. 6 Abs. 1 lit. f DSGVO).",
        "Aufbewahrung nach steuer- und handelsrechtlichen Vorschriften und Auskünfte an Behörden — rechtliche "
        "Verpflichtung (Art. 6 Abs. 1 lit. c DSGVO).",
    ],
    "en": [
        "Answering and handling your calls, booking and managing appointments, messages, forwarding to staff and "
        "documenting calls — performance of a contract or steps prior to one (Art. 6(1)(b) GDPR).",
        "Recording and transcribing calls — only with your explicit consent (Art. 6(1)(a) GDPR), which you can "
        "withdraw at any time for the future.",
        "System security, abuse prevention, troubleshooting and anonymous statistics — legitimate interests "
        "(Art. 6(1)(f) GDPR).",
        "Keeping records required by tax and commercial law, and information to authorities — legal obligation "
        "(Art. 6(1)(c) GDPR).",
    ],
}

_RIGHTS: dict[Language, list[str]] = {
    "de": ["Auskunft (Art. 15 DSGVO)", "Berichtigung (Art. 16 DSGVO)", "Löschung (Art. 17 DSGVO)",
           "Einschränkung der Verarbeitung (Art. 18 DSGVO)", "Datenübertragbarkeit (Art. 20 DSGVO)",
           "Widerspruch gegen Verarbeitungen aus berechtigtem Interesse (Art. 21 DSGVO)",
           "Widerruf erteilter Einwilligungen mit Wirkung für die Zukunft (Art. 7 Abs. 3 DSGVO)"],
    "en": ["access (Art. 15 GDPR)", "rectification (Art. 16 GDPR)", "erasure (Art. 17 GDPR)",
           "restriction of processing (Art. 18 GDPR)", "data portability (Art. 20 GDPR)",
           "objection to processing based on legitimate interests (Art. 21 GDPR)",
           "withdrawal of consent at any time, for the future (Art. 7(3) GDPR)"],
}


def _party(p: Party) -> str:
    return ", ".join(x for x in (p.name, p.address, p.phone, p.email, p.url) if x)


def retention_lines(profile: TenantProfile, language: Language) -> list[str]:
    r, t = profile.retention, _T[language]
    days = t["days"]
    if language == "de":
        return [f"Gesprächsaufzeichnungen: {days.format(n=r.recordings_days)}",
                f"Transkripte: {days.format(n=r.transcripts_days)}",
                f"Anrufdaten: {days.format(n=r.call_metadata_days)}, danach anonymisiert",
                f"Kunden- und Termindaten: {t['years_after'].format(n=r.customer_years_after_relationship)}",
                f"Protokolle: {days.format(n=r.logs_days)}"]
    return [f"call recordings: {days.format(n=r.recordings_days)}",
            f"transcripts: {days.format(n=r.transcripts_days)}",
            f"call records: {days.format(n=r.call_metadata_days)}, then anonymised",
            f"customer and appointment data: {t['years_after'].format(n=r.customer_years_after_relationship)}",
            f"logs: {days.format(n=r.logs_days)}"]


def _recipients(processors: Sequence[ProcessorLike], lang: Language) -> Section:
    t = _T[lang]
    recipients = Section(t["recipients"])
    if processors:
        recipients.paragraphs.append(t["recipients_intro"])
        for p in processors:
            line = f"{p.name} — {p.purpose}; {p.location}; {', '.join(p.data_categories)}"
            if p.transfer_safeguard:
                line += f"; {t['safeguard']}: {p.transfer_safeguard}"
            recipients.bullets.append(line)
    else:
        recipients.paragraphs.append(t["recipients_none"])
    return recipients


def _authority(profile: TenantProfile, lang: Language) -> Section:
    t = _T[lang]
    authority = Section(t["authority"], [t["authority_text"]])
    authority.bullets.append(_party(profile.supervisory_authority) if profile.supervisory_authority
                             else t["authority_unknown"])
    return authority


def build_privacy_notice(
    profile: TenantProfile, processors: Sequence[ProcessorLike], *, language: Language | None = None,
) -> Statement:
    """The tenant's full privacy notice for callers (R-11.2), the page the notice SMS links to."""
    lang: Language = language or profile.language
    t = _T[lang]
    controller = profile.controller or Party(name=profile.name, address=profile.address)
    title = ("Datenschutzhinweise für Anrufer" if lang == "de" else "Privacy notice for callers")
    intro = (f"Wie {profile.name} Ihre Daten verarbeitet, wenn Sie anrufen und mit unserem KI-Telefonassistenten "
             "sprechen." if lang == "de" else
             f"How {profile.name} processes your data when you call and talk to our AI phone assistant.")
    sections = [
        Section(t["controller"], [_party(controller)]),
        Section(t["purposes"], bullets=list(_PURPOSES[lang])),
        _recipients(processors, lang),
        Section(t["retention"], bullets=retention_lines(profile, lang)),
        Section(t["source"], [t["source_text"]]),
        Section(t["automated"], [t["automated_text"]]),
        Section(t["rights"], bullets=list(_RIGHTS[lang])),
        _authority(profile, lang),
    ]
    return Statement(title=f"{title} — {profile.name}", language=lang, intro=intro, sections=sections)


def build_statement(
    profile: TenantProfile, processors: Sequence[ProcessorLike], counts: Mapping[str, int], *,
    request_id: str, generated_at: dt.datetime, language: Language | None = None,
) -> Statement:
    """The statement for one person; ``counts`` maps data categories (``calls``, ``turns`` …) to numbers."""
    lang: Language = language or profile.language
    t = _T[lang]
    controller = profile.controller or Party(name=profile.name, address=profile.address)
    held = [f"{_CATEGORIES[lang].get(k, k)}: {n}" for k, n in counts.items() if n]
    recipients = _recipients(processors, lang)
    authority = _authority(profile, lang)
    intro = t["intro"].format(date=generated_at.astimezone(profile.tz).date().isoformat(), request=request_id,
                              name=profile.name)
    sections = [
        Section(t["controller"], [_party(controller)]),
        Section(t["held"], bullets=held or ["—"]),
        Section(t["purposes"], bullets=list(_PURPOSES[lang])),
        recipients,
        Section(t["retention"], bullets=retention_lines(profile, lang)),
        Section(t["source"], [t["source_text"]]),
        Section(t["automated"], [t["automated_text"]]),
        Section(t["rights"], bullets=list(_RIGHTS[lang])),
        authority,
    ]
    return Statement(title=f"{t['title']} — {profile.name}", language=lang, intro=intro, sections=sections)
