"""The post-call summary (R-3.2): why the caller rang, what came of it, what staff must do.

Written in the call's language from the conversation log alone, so it works the same for
both engines. Sentiment is computed only when the tenant switched it on
(``profile.sentiment_analysis``, off by default) and then with a small word list — no text
leaves the machine for it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from voicedesk.dialogue.engine import ConversationLog, Intent
from voicedesk.dialogue.speech import say_datetime
from voicedesk.domain.profile import Language

Sentiment = Literal["positive", "neutral", "negative"]


@dataclass(frozen=True)
class CallSummary:
    """A structured post-call summary; ``text`` is the same as one short paragraph."""

    language: Language
    reason: str
    outcome: str
    appointment: Mapping[str, Any] | None
    message: Mapping[str, Any] | None
    follow_ups: tuple[str, ...]
    sentiment: Sentiment | None
    intents: tuple[Intent, ...]

    @property
    def text(self) -> str:
        lead = (
            ("Anliegen: ", "Ergebnis: ", "Zu tun: ")
            if self.language == "de"
            else ("Reason: ", "Outcome: ", "Follow-up: ")
        )
        parts = [f"{lead[0]}{self.reason}.", f"{lead[1]}{self.outcome}."]
        if self.follow_ups:
            parts.append(lead[2] + "; ".join(self.follow_ups) + ".")
        return " ".join(parts)


class HasLog(Protocol):
    @property
    def log(self) -> ConversationLog: ...


_REASONS: dict[str, tuple[str, str]] = {
    "book": ("Terminwunsch", "wants an appointment"),
    "cancel": ("Termin absagen", "cancel an appointment"),
    "reschedule": ("Termin verschieben", "reschedule an appointment"),
    "faq": (
        "Frage zu Öffnungszeiten, Adresse oder Preisen",
        "question about opening hours, address or prices",
    ),
    "message": ("Nachricht / Rückrufbitte", "message / callback request"),
    "human": ("möchte einen Mitarbeiter sprechen", "asked for a member of staff"),
    "dsar": ("Anfrage zu den eigenen Daten (DSGVO)", "request about their personal data (GDPR)"),
}
_POSITIVE = {
    "danke",
    "super",
    "prima",
    "toll",
    "perfekt",
    "wunderbar",
    "freundlich",
    "klasse",
    "gut",
    "thanks",
    "thank",
    "great",
    "perfect",
    "wonderful",
    "lovely",
    "excellent",
    "brilliant",
    "good",
}
_NEGATIVE = {
    "ärgerlich",
    "unverschämt",
    "schlecht",
    "beschwerde",
    "beschweren",
    "sauer",
    "verärgert",
    "blöd",
    "blöde",
    "scheiße",
    "mist",
    "nervt",
    "unzufrieden",
    "enttäuscht",
    "idiot",
    "angry",
    "terrible",
    "awful",
    "complaint",
    "complain",
    "annoyed",
    "stupid",
    "useless",
    "ridiculous",
    "unacceptable",
    "disappointed",
    "bad",
    "rubbish",
    "shit",
}


def _sentiment(lines: list[str]) -> Sentiment:
    words = [w for line in lines for w in re.findall(r"[\wäöüß]+", line.lower())]
    score = sum(1 for w in words if w in _POSITIVE) - 2 * sum(1 for w in words if w in _NEGATIVE)
    if score > 0:
        return "positive"
    if score < 0:
        return "negative"
    return "neutral"


def summarize(conversation: ConversationLog | HasLog) -> CallSummary:
    """Summarise a finished (or interrupted) conversation in its own language."""
    log = conversation if isinstance(conversation, ConversationLog) else conversation.log
    lang = log.ctx.language
    de = lang == "de"
    profile = log.ctx.profile
    replies = log.replies
    intents = tuple(r.intent for r in replies if r.intent is not None)
    meaningful = [i for i in intents if i not in ("other", "goodbye")]
    reason = (
        _REASONS[meaningful[0]][0 if de else 1]
        if meaningful
        else ("kein erkennbares Anliegen" if de else "no clear request")
    )

    outcomes: list[str] = []
    follow_ups: list[str] = []
    appointment: Mapping[str, Any] | None = None
    message: Mapping[str, Any] | None = None
    for reply in replies:
        for action in reply.actions:
            data = action.data
            if action.type in ("book", "reschedule"):
                appointment = data
                service = profile.service(str(data.get("service")))
                name = profile.text(service.name, lang) if service else str(data.get("service"))
                when = say_datetime(dt.datetime.fromisoformat(str(data["start"])).astimezone(profile.tz), lang)
                if action.type == "book":
                    outcomes.append(f"Termin gebucht: {name} am {when}" if de else f"booked {name} on {when}")
                else:
                    outcomes.append(f"Termin verlegt auf {when}" if de else f"appointment moved to {when}")
            elif action.type == "cancel":
                appointment = data
                outcomes.append("Termin abgesagt" if de else "appointment cancelled")
            elif action.type == "message":
                message = data
                outcomes.append("Nachricht aufgenommen" if de else "message taken")
                phone = data.get("phone")
                urgent = data.get("urgency") == "high"
                if phone:
                    follow_ups.append(
                        ("dringend " if urgent else "") + f"zurückrufen unter {phone}"
                        if de
                        else ("urgent: " if urgent else "") + f"call back on {phone}"
                    )
                else:
                    follow_ups.append(
                        "Anliegen bearbeiten (keine Rückrufnummer)" if de else "handle the request (no callback number)"
                    )
            elif action.type == "transfer":
                outcomes.append("an einen Mitarbeiter weitergeleitet" if de else "transferred to staff")
            elif action.type == "dsar":
                outcomes.append("Datenschutzanfrage erfasst" if de else "data-protection request recorded")
                follow_ups.append(
                    "Identität prüfen und Anfrage binnen eines Monats beantworten"
                    if de
                    else "verify identity and answer the request within one month"
                )
    outcome = ", ".join(outcomes) if outcomes else ("ohne Ergebnis beendet" if de else "ended without result")
    sentiment = _sentiment(log.caller_lines) if profile.sentiment_analysis else None
    return CallSummary(
        language=lang,
        reason=reason,
        outcome=outcome,
        appointment=appointment,
        message=message,
        follow_ups=tuple(follow_ups),
        sentiment=sentiment,
        intents=intents,
    )
