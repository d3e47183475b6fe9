"""The deterministic rule engine: one state machine per call, German and English.

Each caller utterance first passes the call-wide checks (silence, "wie bitte?", emergency,
goodbye, data-protection request, a human, decisions the assistant must not take), then
fills the slots of the current task (book, cancel, reschedule, message, dsar). A task
asks for what is missing one question at a time and never asks the same question more
than twice: after the second failure it offers a message or a human.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any, Literal

from voicedesk.dialogue.engine import Action, CallerContext, ConversationLog, Expectation, Intent, Reply, Turn
from voicedesk.dialogue.rules import lexicon as lx
from voicedesk.dialogue.rules.extract import (
    default_region,
    extract_email,
    extract_name,
    extract_phone,
    find_service,
)
from voicedesk.dialogue.rules.faq import answer_topic, faq_topic
from voicedesk.dialogue.rules.phrases import DSAR_KIND_WORDS, say
from voicedesk.dialogue.speech import join_alternatives, join_words, say_date, say_datetime, say_phone, say_time
from voicedesk.dialogue.tools import AppointmentData, DialogueTools, DsarKind, Preferences, Urgency
from voicedesk.domain.availability import Slot, public_holidays
from voicedesk.domain.errors import ConflictError, NotFoundError
from voicedesk.domain.profile import WEEKDAYS, Language, Service, TenantProfile
from voicedesk.domain.when import When, localize, parse_when

Task = Literal["book", "cancel", "reschedule", "message", "dsar"]
Pending = Literal[
    "service",
    "when",
    "slot",
    "name",
    "phone",
    "phone_confirm",
    "confirm_book",
    "change",
    "lookup_name",
    "pick_appointment",
    "confirm_cancel",
    "confirm_reschedule",
    "reason",
    "dsar_contact",
    "anything_else",
    "offer_fallback",
]
_EXPECTS: dict[str, Expectation] = {
    "slot": "yes_no",
    "confirm_book": "yes_no",
    "confirm_cancel": "yes_no",
    "confirm_reschedule": "yes_no",
    "phone_confirm": "yes_no",
    "name": "name",
    "lookup_name": "name",
    "phone": "digits",
    "when": "when",
    "dsar_contact": "digits",
}
_ANSWER_PREFIX = re.compile(r"^\s*(?:no|nope|nah|nein|nee|yes|yeah|ja|okay|ok)\b[\s,.!]*", re.IGNORECASE)
_MAX_ATTEMPTS = 2
_MAX_SILENCE = 3


@dataclasses.dataclass
class _State:
    task: Task | None = None
    pending: Pending | None = None
    attempts: int = 0
    service_id: str | None = None
    when: When | None = None
    when_text: str | None = None
    offered: list[Slot] = dataclasses.field(default_factory=list)
    offer_index: int = 0
    chosen: Slot | None = None
    name: str | None = None
    phone: str | None = None
    phone_candidate: str | None = None
    email: str | None = None
    reason: str | None = None
    urgency: Urgency = "normal"
    appointments: list[AppointmentData] | None = None
    target: AppointmentData | None = None
    dsar_kind: DsarKind = "access"
    looked_up_by_name: bool = False


def _when_json(when: When | None) -> dict[str, Any] | None:
    return None if when is None else dict(when.to_json())


def _exact_time(when: When | None) -> dt.datetime | None:
    """The moment the caller named when they said a clock time, else ``None``."""
    if when is None or not when.is_exact:
        return None
    return when.start


def _spread(slots: list[Slot], gap: dt.timedelta = dt.timedelta(minutes=60)) -> list[Slot]:
    """Alternatives worth offering one after another: at least ``gap`` apart."""
    kept: list[Slot] = []
    for slot in slots:
        if all(abs(slot.start - k.start) >= gap for k in kept):
            kept.append(slot)
    return kept


class RuleConversation:
    """One call with the rule engine; see the module docstring for the order of checks."""

    def __init__(self, ctx: CallerContext, tools: DialogueTools) -> None:
        self.ctx = ctx
        self.tools = tools
        self.profile: TenantProfile = ctx.profile
        self.lang: Language = ctx.language
        self.log = ConversationLog(ctx=ctx)
        self.state = _State()
        self._last: Reply | None = None
        self._last_question: Reply | None = None
        self._silences = 0
        self._misunderstood = 0
        self._rude = 0
        self._ended = False
        self._transferring = False
        self._handover: tuple[str, Urgency] | None = None
        self._region = default_region(self.profile)
        self.messages: list[dict[str, Any]] = []
        self.appointment: AppointmentData | None = None

    # -- the Conversation port -------------------------------------------------------------

    async def greet(self) -> Reply:
        greeting = self.profile.text(self.profile.greeting, self.lang) if self.profile.greeting else ""
        if not greeting:
            greeting = say("greeting", self.lang, business=self.profile.name)
        if self.ctx.known_name:
            greeting = say("hello_known", self.lang, name=self.ctx.known_name) + " " + greeting
        return self._emit(greeting, None)

    async def respond(self, utterance: str) -> Reply:
        self.log.turns.append(Turn("caller", utterance))
        if self._ended:
            return self._emit(say("goodbye", self.lang), "goodbye", actions=(Action("end_call"),))
        text = utterance.strip()
        if not text:
            return self._silence()
        self._silences = 0
        return await self._handle(text)

    async def transfer_failed(self, reason: str) -> Reply:
        self._transferring = False
        self._start("message")
        s = self.state
        if self._handover is not None:  # what the caller wanted the human for becomes the message
            s.reason, s.urgency = self._handover
        lead = say("transfer_failed", self.lang)
        return await self._advance_message(lead=lead)

    def heard(self, text: str) -> None:
        for turn in reversed(self.log.turns):
            if turn.speaker == "assistant":
                turn.text = text
                break

    # -- plumbing ---------------------------------------------------------------------------

    def _emit(
        self,
        text: str,
        intent: Intent | None,
        *,
        pending: Pending | None = None,
        actions: tuple[Action, ...] = (),
        appointment: AppointmentData | None = None,
        expects: Expectation | None = None,
    ) -> Reply:
        s = self.state
        if pending is not None or intent is not None:
            s.pending = pending
        reply = Reply(
            text=text,
            intent=intent,
            actions=actions,
            expects=expects or (_EXPECTS.get(pending, "free") if pending else "free"),
            understood=self._understood(),
            appointment=dict(appointment) if appointment is not None else None,
        )
        if any(a.type == "end_call" for a in actions):
            self._ended = True
        self._last = reply
        if pending is not None and intent != "faq":
            self._last_question = reply
        self.log.turns.append(Turn("assistant", text, reply))
        return reply

    def _understood(self) -> dict[str, Any]:
        s = self.state
        return {
            "service": s.service_id,
            "when": _when_json(s.when),
            "name": s.name,
            "phone": s.phone,
            "email": s.email,
        }

    def _intent(self) -> Intent:
        return self.state.task or "other"

    def _ask(self, key: str, pending: Pending, *, lead: str = "", **values: str) -> Reply:
        text = (lead + " " if lead else "") + say(key, self.lang, **values)
        return self._emit(text, self._intent(), pending=pending)

    def _service(self) -> Service | None:
        sid = self.state.service_id
        return self.profile.service(sid) if sid else None

    def _service_name(self, service_id: str | None) -> str:
        service = self.profile.service(service_id) if service_id else None
        return self.profile.text(service.name, self.lang) if service else (service_id or "")

    def _services_list(self) -> str:
        names = [self.profile.text(s.name, self.lang) for s in self.profile.services]
        return join_alternatives(names, self.lang)

    def _next_offer(self, task: Intent) -> Reply:
        s = self.state
        slot, previous = s.offered[s.offer_index], s.offered[s.offer_index - 1]
        tz = self.profile.tz
        if slot.start.astimezone(tz).date() == previous.start.astimezone(tz).date():
            text = say("offer_same_day", self.lang, time=say_time(slot.start.astimezone(tz).time(), self.lang))
        else:
            text = say("offer_next", self.lang, slot=self._slot_text(slot.start))
        return self._emit(text, task, pending="slot")

    def _shift_offer(self, *, later: bool) -> Reply | None:
        """ "Später?" / "anything earlier?": the next offered slot in that direction, if any."""
        s = self.state
        current = s.offered[s.offer_index]
        for index, slot in enumerate(s.offered):
            if index != s.offer_index and (slot.start > current.start if later else slot.start < current.start):
                s.offered = [current, slot, *[x for i, x in enumerate(s.offered) if i not in (index, s.offer_index)]]
                s.offer_index = 1
                return self._next_offer(self._intent())
        return None

    def _parse_when_correction(self, text: str) -> When | None:
        """Parse a wish; a time said alone ("lieber um 12") keeps the day wished before."""
        when = self._parse_when(text)
        previous = self.state.when
        if when is None or previous is None:
            return when
        tz = self.profile.tz
        prev_day = previous.start.astimezone(tz).date()
        today = self.ctx.now.astimezone(tz).date()
        day = when.start.astimezone(tz).date()
        if day == prev_day or day not in (today, today + dt.timedelta(days=1)):
            return when
        wish = _ANSWER_PREFIX.sub("", text)
        again = parse_when(wish, now=localize(prev_day, dt.time(0), tz), language=self.lang, tz=tz)
        if again is not None and again.start.astimezone(tz).date() == prev_day:
            return again
        return when

    def _on_slot_text(self, start: dt.datetime) -> str:
        """``am Dienstag, den 1. Dezember um 15 Uhr`` / ``morgen, am …``; English ``on …``/``tomorrow, …``."""
        local = start.astimezone(self.profile.tz)
        today = self.ctx.now.astimezone(self.profile.tz).date()
        base = say_datetime(local, self.lang)
        relative = {today: ("heute", "today"), today + dt.timedelta(days=1): ("morgen", "tomorrow")}.get(local.date())
        if self.lang == "de":
            return (f"{relative[0]}, am " if relative else "am ") + base
        return (f"{relative[1]}, " if relative else "on ") + base

    def _plain_slot_text(self, start: dt.datetime) -> str:
        return say_datetime(start.astimezone(self.profile.tz), self.lang)

    def _slot_text(self, start: dt.datetime) -> str:
        local = start.astimezone(self.profile.tz)
        return say_datetime(local, self.lang, self.ctx.now)

    def _caller_phone(self) -> str | None:
        return self.state.phone or self.ctx.caller_number

    def _caller_name(self) -> str | None:
        return self.state.name or self.ctx.known_name

    def _fail(self) -> bool:
        """Count one failed attempt at the pending question; True when it is time to give up."""
        self.state.attempts += 1
        return self.state.attempts >= _MAX_ATTEMPTS

    def _start(self, task: Task) -> None:
        s = self.state
        keep_name, keep_phone, keep_email = s.name, s.phone, s.email
        self.state = _State(task=task, name=keep_name, phone=keep_phone, email=keep_email)

    # -- the call-wide checks ---------------------------------------------------------------

    async def _handle(self, text: str) -> Reply:
        s = self.state
        norm = lx.normalise(text)
        lang = self.lang
        words = len(norm.split())

        if lx.matches(norm, lx.REPEAT, lang) and words <= 6 and self._last is not None:
            again = self._last
            self.log.turns.append(Turn("assistant", again.text, again))
            return again
        if lx.matches(norm, lx.EMERGENCY, lang):
            return await self._transfer("emergency", text, lead=say("emergency", lang), mode="warm")

        expecting_free_text = s.pending in ("reason", "name", "lookup_name")
        if not expecting_free_text and self._is_goodbye(norm):
            return self._goodbye()
        if lx.matches(norm, lx.DSAR, lang) and s.pending != "reason":
            self._start("dsar")
            self.state.dsar_kind = self._dsar_kind(norm)
            return await self._advance_dsar(text)

        if not expecting_free_text and lx.matches(norm, lx.MESSAGE, lang) and s.task != "message":
            self._start("message")
            if words >= 5 and lx.matches(norm, lx.REASON_GIVEN, lang):
                self.state.reason = text
                self.state.urgency = self._urgency(norm)
            return await self._advance_message()

        booking_words = (
            lx.matches(norm, lx.BOOK, lang)
            or lx.matches(norm, lx.CANCEL, lang)
            or lx.matches(norm, lx.RESCHEDULE, lang)
        )
        if s.pending != "reason":
            category = self._escalation(norm, booking_words)
            if category is not None:
                return await self._transfer(category, text, lead=say("escalate", lang), mode="warm")
        if s.pending == "offer_fallback":
            return await self._on_offer_fallback(text, norm)
        if not expecting_free_text and lx.matches(norm, lx.HUMAN, lang) and not booking_words:
            return await self._transfer("human", text, mode="cold")

        switched = await self._maybe_switch_task(text, norm)
        if switched is not None:
            return switched

        if s.task is None or s.pending in (None, "anything_else"):
            topic = faq_topic(text, self.profile, lang)
            if topic is not None:
                answer = answer_topic(self.profile, topic, lang, question=text)
                self._misunderstood = 0
                if answer is None:
                    answer = say("no_answer_faq", lang)
                return self._emit(answer + " " + say("anything_else", lang), "faq", pending="anything_else")
        elif s.pending not in ("reason", "name", "lookup_name", "phone", "dsar_contact"):
            topic = faq_topic(text, self.profile, lang)
            if topic is not None and find_service(text, self.profile, lang) is None:
                answer = answer_topic(self.profile, topic, lang, question=text) or say("no_answer_faq", lang)
                question = self._last_question.text if self._last_question else say("how_help", lang)
                return self._emit(
                    answer + " " + question,
                    "faq",
                    pending=s.pending,
                    expects=self._last_question.expects if self._last_question else "free",
                )

        if s.task is not None and s.pending not in (None, "anything_else"):
            return await self._on_pending(text, norm)
        if s.pending == "anything_else":
            if lx.matches(norm, lx.NO, lang) and not lx.matches(norm, lx.YES, lang):
                return self._goodbye()
            if lx.matches(norm, lx.YES, lang) and words <= 3:
                self.state = dataclasses.replace(_State(), name=s.name, phone=s.phone, email=s.email)
                return self._emit(say("what_else", lang), "other")
        if lx.matches(norm, lx.RUDE, lang):
            return await self._rude_reply()
        # An appointment wish said without the word "Termin" ("morgen um 10 zur Zahnreinigung").
        if find_service(text, self.profile, lang) is not None:
            self._start("book")
            return await self._book_turn(text)
        return self._not_understood()

    def _is_goodbye(self, norm: str) -> bool:
        lang = self.lang
        if _EXPECTS.get(self.state.pending or "") == "yes_no" and lx.matches(norm, lx.YES, lang):
            return False  # "yes, that's it" confirms; it does not hang up
        if lx.matches(norm, lx.GOODBYE, lang):
            return True
        return lx.matches(norm, lx.THANKS_ONLY, lang) and (
            self.state.task is None or self.state.pending in (None, "anything_else")
        )

    def _dsar_kind(self, norm: str) -> DsarKind:
        order: tuple[DsarKind, ...] = ("erasure", "rectification", "restriction", "objection", "portability")
        for kind in order:
            if lx.matches(norm, lx.DSAR_KINDS[kind], self.lang):
                return kind
        return "access"

    def _escalation(self, norm: str, booking_words: bool) -> str | None:
        for category, cues in lx.ESCALATE.items():
            if not lx.matches(norm, cues, self.lang):
                continue
            if category == "complaint" or not booking_words:
                return category
        return None

    def _urgency(self, norm: str) -> Urgency:
        return "high" if lx.matches(norm, lx.URGENT, self.lang) else "normal"

    async def _maybe_switch_task(self, text: str, norm: str) -> Reply | None:
        lang = self.lang
        s = self.state
        if s.pending in ("reason", "name", "lookup_name"):
            return None
        if lx.matches(norm, lx.RESCHEDULE, lang) and s.task != "reschedule":
            self._start("reschedule")
            return await self._reschedule_turn(text, first=True)
        if lx.matches(norm, lx.CANCEL, lang) and s.task not in ("cancel",):
            self._start("cancel")
            return await self._cancel_turn(text)
        if (lx.matches(norm, lx.BOOK, lang) and s.task is None) or (
            lx.matches(norm, lx.BOOK, lang) and s.pending == "anything_else"
        ):
            self._start("book")
            return await self._book_turn(text)
        return None

    # -- silence, rudeness, misunderstanding, goodbye, transfer --------------------------------

    def _silence(self) -> Reply:
        self._silences += 1
        lang = self.lang
        if self._silences >= _MAX_SILENCE:
            return self._emit(say("silent_end", lang), self._intent(), actions=(Action("end_call"),))
        if self._silences == _MAX_SILENCE - 1:
            text = (
                say("cant_hear", lang) + " " + say("offer_fallback" if self._can_transfer() else "offer_message", lang)
            )
            return self._emit(text, self._intent(), pending="offer_fallback", expects="yes_no")
        question = self._last_question.text if self._last_question else say("how_help", lang)
        expects = self._last_question.expects if self._last_question else "free"
        reply = Reply(
            text=say("still_there", lang) + " " + question,
            intent=self._intent(),
            expects=expects,
            understood=self._understood(),
        )
        self._last = reply
        self.log.turns.append(Turn("assistant", reply.text, reply))
        return reply

    async def _rude_reply(self) -> Reply:
        self._rude += 1
        if self._rude >= _MAX_ATTEMPTS:
            return await self._transfer("rude", "", mode="cold")
        return self._offer_fallback(lead=say("rude", self.lang))

    def _not_understood(self) -> Reply:
        self._misunderstood += 1
        if self._misunderstood >= _MAX_ATTEMPTS:
            return self._offer_fallback()
        return self._emit(
            say("not_understood", self.lang) + " " + say("how_help", self.lang),
            "other",
            pending=self.state.pending if self.state.task else None,
        )

    def _offer_fallback(self, lead: str = "") -> Reply:
        key = "offer_fallback" if self._can_transfer() else "offer_message"
        text = (lead + " " if lead else "") + say(key, self.lang)
        return self._emit(text, self._intent(), pending="offer_fallback", expects="yes_no")

    async def _on_offer_fallback(self, text: str, norm: str) -> Reply:
        lang = self.lang
        if lx.matches(norm, lx.MESSAGE, lang):
            self._start("message")
            return await self._advance_message()
        if lx.matches(norm, lx.HUMAN, lang) or (lx.matches(norm, lx.YES, lang) and self._can_transfer()):
            return await self._transfer("failed", "", mode="warm")
        if lx.matches(norm, lx.YES, lang):
            self._start("message")
            return await self._advance_message()
        if lx.matches(norm, lx.NO, lang):
            self.state = _State(name=self.state.name, phone=self.state.phone)
            self._misunderstood = 0
            return self._emit(say("what_else", lang), "other")
        switched = await self._maybe_switch_task(text, norm)
        if switched is not None:
            return switched
        return await self._transfer("failed", text, mode="warm")

    def _can_transfer(self) -> bool:
        return self.profile.forwarding_number is not None

    def _goodbye(self) -> Reply:
        return self._emit(say("goodbye", self.lang), "goodbye", actions=(Action("end_call"),))

    async def _transfer(self, why: str, said: str, *, mode: Literal["cold", "warm"], lead: str = "") -> Reply:
        lang = self.lang
        prefix = (lead + " ") if lead else ""
        if not self._can_transfer():
            self._start("message")
            s = self.state
            if why not in ("human", "failed", "rude") and said:
                s.reason = said
                s.urgency = "high" if why == "emergency" else self._urgency(lx.normalise(said))
            return await self._advance_message(lead=prefix + say("no_transfer", lang), ask_reason=False)
        summary = self._summary_sentence(why, said)
        self._transferring = True
        if why not in ("human", "failed", "rude") and said:
            self._handover = (said, "high" if why == "emergency" else self._urgency(lx.normalise(said)))
        action = Action("transfer", {"mode": mode, "target": None, "summary": summary})
        return self._emit(prefix + say("transfer", lang), "human", actions=(action,), pending=None)

    def _summary_sentence(self, why: str, said: str) -> str:
        staff_lang: Language = self.profile.language
        de = staff_lang == "de"
        who = self._caller_name() or ("Unbekannter Anrufer" if de else "Unknown caller")
        phone = self._caller_phone() or ("Nummer unterdrückt" if de else "number withheld")
        quoted = f' "{said.strip()}"' if said.strip() and why not in ("human", "failed", "rude") else ""
        topics = {
            "human": ("möchte mit einem Mitarbeiter sprechen", "asks to speak to a member of staff"),
            "failed": ("der Assistent konnte nicht weiterhelfen", "the assistant could not help"),
            "rude": ("ist verärgert und möchte einen Mitarbeiter", "is upset and wants a member of staff"),
            "emergency": ("meldet möglicherweise einen Notfall:", "may be reporting an emergency:"),
            "medical": ("braucht eine medizinische Entscheidung:", "needs a medical decision:"),
            "legal": ("hat eine rechtliche Frage:", "has a legal question:"),
            "financial": ("hat eine Frage zu Geld oder Rechnung:", "has a billing or payment question:"),
            "complaint": ("möchte sich beschweren:", "wants to make a complaint:"),
        }
        topic = topics.get(why, topics["human"])[0 if de else 1]
        task = self.state.task
        extra = ""
        if task in ("book", "cancel", "reschedule") and why in ("human", "failed", "rude"):
            verbs = {
                "book": ("Termin buchen", "book an appointment"),
                "cancel": ("Termin absagen", "cancel an appointment"),
                "reschedule": ("Termin verschieben", "reschedule an appointment"),
            }
            extra = (" (Anliegen: " if de else " (about: ") + verbs[task][0 if de else 1] + ")"
        return f"{who} ({phone}) {topic}{quoted}{extra}."

    # -- pending questions ------------------------------------------------------------------

    async def _on_pending(self, text: str, norm: str) -> Reply:
        task = self.state.task
        if task == "book":
            return await self._book_turn(text)
        if task == "cancel":
            return await self._cancel_turn(text)
        if task == "reschedule":
            return await self._reschedule_turn(text, first=False)
        if task == "message":
            return await self._message_turn(text, norm)
        if task == "dsar":
            return await self._dsar_turn(text)
        return self._not_understood()

    def _parse_when(self, text: str) -> When | None:
        # "nein, lieber Mittwoch": the leading no answers our question; it does not negate the day.
        wish = _ANSWER_PREFIX.sub("", text)
        return parse_when(wish, now=self.ctx.now, language=self.lang, tz=self.profile.tz)

    def _absorb_name_and_contact(self, text: str) -> None:
        s = self.state
        name = extract_name(text, self.lang, expecting=False)
        if name:
            s.name = name
        email = extract_email(text, self.lang)
        if email:
            s.email = email

    # -- booking ----------------------------------------------------------------------------

    async def _book_turn(self, text: str) -> Reply:
        s = self.state
        lang = self.lang
        norm = lx.normalise(text)
        pending = s.pending
        yes = lx.matches(norm, lx.YES, lang) and not lx.matches(norm, lx.NO, lang)
        no = lx.matches(norm, lx.NO, lang)

        service = find_service(text, self.profile, lang)
        when = self._parse_when_correction(text) if pending not in ("name", "phone", "phone_confirm") else None
        if pending == "slot" and s.offered and service is None and lx.matches(norm, lx.LATER_EARLIER, lang):
            moved = self._shift_offer(later=not lx.matches(norm, lx.EARLIER, lang))
            if moved is not None:
                return moved
        if service is not None and service.id != s.service_id:
            s.service_id = service.id
            s.offered, s.chosen, s.offer_index = [], None, 0
        if when is not None:
            s.when, s.when_text = when, text
            s.offered, s.chosen, s.offer_index = [], None, 0
        if pending not in ("name",):
            self._absorb_name_and_contact(text)

        if pending == "service" and service is None:
            if self._fail():
                return self._offer_fallback()
            return self._ask("unknown_service", "service", services=self._services_list())
        if pending == "when" and when is None and service is None:
            if self._fail():
                return self._offer_fallback()
            return self._ask("ask_when_again", "when")
        if pending == "slot" and when is None and service is None:
            if yes and s.offered:
                s.chosen = s.offered[s.offer_index]
            elif no:
                s.offer_index += 1
                if s.offer_index < len(s.offered) and s.offer_index < 3:
                    return self._next_offer("book")
                s.when, s.offered, s.offer_index = None, [], 0
                return self._ask("ask_other_time", "when")
            else:
                if self._fail():
                    return self._offer_fallback()
                return self._emit(
                    self._last_question.text if self._last_question else say("ask_when", lang),
                    "book",
                    pending="slot",
                )
        if pending == "name":
            name = extract_name(text, lang, expecting=True)
            if name is None:
                if self._fail():
                    return self._offer_fallback()
                return self._ask("ask_name_again", "name")
            s.name = name
        if pending == "phone":
            phone = self._phone_answer(text, norm)
            if phone is None:
                if self._fail():
                    return self._offer_fallback()
                return self._ask("ask_phone_again", "phone")
            s.phone = phone
        if pending == "confirm_book" and when is None and service is None:
            name = extract_name(text, lang, expecting=False)
            if name and no:
                s.name = name
            elif yes:
                return await self._do_book()
            elif no:
                return self._ask("what_change", "change")
            else:
                if self._fail():
                    return self._offer_fallback()
                return self._confirm_book()
        if pending == "change" and when is None and service is None:
            name = extract_name(text, lang, expecting=True)
            if lx.matches(norm, {"de": (r" name",), "en": (r" name",)}, lang) and (
                name is None or name.lower() in ("name", "den name", "the name")
            ):
                s.name = None
            elif name:
                s.name = name
            elif lx.matches(
                norm,
                {
                    "de": (r" tag ", r" uhrzeit ", r" zeit ", r" datum "),
                    "en": (r" day ", r" time ", r" date "),
                },
                lang,
            ):
                s.when, s.offered, s.chosen = None, [], None
            elif lx.matches(norm, {"de": (r" leistung ",), "en": (r" service ",)}, lang):
                s.service_id, s.offered, s.chosen = None, [], None
            else:
                if self._fail():
                    return self._offer_fallback()
                return self._ask("what_change", "change")
        s.attempts = (
            0
            if s.pending != pending or pending in ("name", "phone", "slot", "service", "when", "confirm_book", "change")
            else s.attempts
        )
        return await self._advance_book()

    async def _advance_book(self, lead: str = "") -> Reply:
        s = self.state
        lang = self.lang
        if s.service_id is None:
            if len(self.profile.services) == 1:
                s.service_id = self.profile.services[0].id
            else:
                return self._ask("ask_service", "service", lead=lead, services=self._services_list())
        if s.chosen is None:
            if s.when is None:
                return self._ask("ask_when", "when", lead=lead)
            if not s.offered:
                return await self._search_and_offer(lead)
            return self._emit(
                say("offer", lang, slot=self._slot_text(s.offered[s.offer_index].start)),
                "book",
                pending="slot",
            )
        if s.name is None:
            s.name = self.ctx.known_name
        if s.name is None:
            return self._ask("ask_name", "name", lead=lead)
        if s.phone is None and self.ctx.caller_number is None:
            return self._ask("ask_phone", "phone", lead=lead)
        return self._confirm_book(lead)

    def _preferences(self) -> Preferences:
        return Preferences(note=self.state.when_text)

    async def _search_and_offer(self, lead: str = "") -> Reply:
        s = self.state
        lang = self.lang
        if not (s.service_id is not None and s.when is not None):
            raise RuntimeError("rule engine state out of order: s.service_id is not None and s.when is not None")
        slots = _spread(await self.tools.find_slots(s.service_id, s.when, self._preferences(), limit=16))
        exact = _exact_time(s.when)
        prefix = (lead + " ") if lead else ""
        if slots:
            s.offered, s.offer_index = slots, 0
            first = slots[0]
            if exact is not None and first.start != exact:
                wish = self._wish_text(exact, with_time=True)
                return self._emit(
                    prefix + say("offer_instead", lang, wish=wish, slot=self._slot_text(first.start)),
                    "book",
                    pending="slot",
                )
            return self._emit(prefix + say("offer", lang, slot=self._slot_text(first.start)), "book", pending="slot")
        day_start = localize(s.when.start.astimezone(self.profile.tz).date(), dt.time(0), self.profile.tz)
        relaxed = dataclasses.replace(s.when, start=day_start, end=None, grain="day")
        later = _spread(await self.tools.find_slots(s.service_id, relaxed, self._preferences(), limit=16))
        if not later:
            s.when = None
            return self._ask("no_slots", "when", lead=lead)
        s.offered, s.offer_index = later, 0
        day = s.when.start.astimezone(self.profile.tz).date()
        wish = self._wish_text(s.when.start, with_time=False)
        key = "offer_closed" if self._closed_on(day) else "offer_full"
        if key == "offer_full" and lang == "de":
            wish = "Am " + wish if not wish.startswith(("heute", "morgen")) else wish[:1].upper() + wish[1:]
        elif key == "offer_full":
            wish = "on " + wish if not wish.startswith(("today", "tomorrow")) else wish
        elif lang == "de":
            wish = "Am " + wish if not wish.startswith(("heute", "morgen")) else wish[:1].upper() + wish[1:]
        else:
            wish = "on " + wish if not wish.startswith(("today", "tomorrow")) else wish
        text = say(key, lang, wish=wish, slot=self._slot_text(later[0].start))
        return self._emit(prefix + text[:1].upper() + text[1:], "book", pending="slot")

    def _wish_text(self, moment: dt.datetime, *, with_time: bool) -> str:
        local = moment.astimezone(self.profile.tz)
        if with_time:
            text = say_datetime(local, self.lang, self.ctx.now)
        else:
            text = say_date(local.date(), self.lang, self.ctx.now.astimezone(self.profile.tz).date())
        return text[:1].upper() + text[1:] if self.lang == "en" or with_time else text

    def _closed_on(self, day: dt.date) -> bool:
        weekday = WEEKDAYS[day.weekday()]
        if not self.profile.opening_hours.get(weekday) or day in self.profile.closed_days:
            return True
        return day in public_holidays(self.profile.holiday_region, [day.year])

    def _confirm_book(self, lead: str = "") -> Reply:
        s = self.state
        if not (s.chosen is not None and s.name is not None):
            raise RuntimeError("rule engine state out of order: s.chosen is not None and s.name is not None")
        text = say(
            "confirm_book",
            self.lang,
            service=self._service_name(s.service_id),
            slot=self._on_slot_text(s.chosen.start),
            name=s.name,
        )
        return self._emit((lead + " " if lead else "") + text, "book", pending="confirm_book")

    async def _do_book(self) -> Reply:
        s = self.state
        if not (s.chosen is not None and s.service_id is not None and s.name is not None):
            raise RuntimeError("rule engine state out of order: booking without slot, service or name")
        try:
            appointment = await self.tools.book(
                s.service_id,
                s.chosen.start,
                staff=s.chosen.staff_id,
                name=s.name,
                phone=s.phone or self.ctx.caller_number,
                email=s.email,
                preferences=self._preferences(),
            )
        except ConflictError:
            s.chosen, s.offered, s.offer_index = None, [], 0
            return await self._advance_book(lead=say("slot_gone", self.lang))
        self.appointment = appointment
        text = say(
            "booked",
            self.lang,
            service=self._service_name(s.service_id),
            slot=self._on_slot_text(s.chosen.start),
        )
        name, phone, email = s.name, s.phone, s.email
        self.state = _State(name=name, phone=phone, email=email)
        return self._emit(
            text,
            "book",
            pending="anything_else",
            actions=(Action("book", dict(appointment)),),
            appointment=appointment,
        )

    # -- phone numbers ----------------------------------------------------------------------

    def _phone_question(self) -> str:
        return say("ask_phone_same" if self.ctx.caller_number else "ask_phone", self.lang)

    def _phone_answer(self, text: str, norm: str) -> str | None:
        number = extract_phone(text, self.lang, self._region)
        if number:
            return number
        if (
            self.ctx.caller_number
            and (lx.matches(norm, lx.YES, self.lang) or lx.matches(norm, lx.CALLER_NUMBER_OK, self.lang))
            and not lx.matches(norm, lx.NO, self.lang)
        ):
            return self.ctx.caller_number
        return None

    # -- cancel and reschedule ----------------------------------------------------------------

    async def _find_appointments(self) -> list[AppointmentData]:
        s = self.state
        if s.appointments is None:
            phone = self._caller_phone()
            found = await self.tools.find_caller_appointments(phone=phone) if phone else []
            if not found and self._caller_name():
                found = await self.tools.find_caller_appointments(name=self._caller_name())
                s.looked_up_by_name = True
            s.appointments = found
        return s.appointments

    def _pick(self, text: str, appointments: list[AppointmentData]) -> AppointmentData | None:
        if len(appointments) == 1:
            return appointments[0]
        norm = lx.normalise(text)
        when = self._parse_when(text)
        if when is not None:
            day = when.start.astimezone(self.profile.tz).date()
            same = [
                a
                for a in appointments
                if dt.datetime.fromisoformat(a["start"]).astimezone(self.profile.tz).date() == day
            ]
            exact = _exact_time(when)
            if exact is not None:
                at = [a for a in same if dt.datetime.fromisoformat(a["start"]) == exact]
                if len(at) == 1:
                    return at[0]
            if len(same) == 1:
                return same[0]
        service = find_service(text, self.profile, self.lang)
        if service is not None:
            hits = [a for a in appointments if a["service"] == service.id]
            if len(hits) == 1:
                return hits[0]
        if lx.matches(norm, lx.FIRST, self.lang):
            return appointments[0]
        if lx.matches(norm, lx.SECOND, self.lang):
            return appointments[1]
        return None

    def _appointment_text(self, appointment: AppointmentData) -> str:
        return self._on_slot_text(dt.datetime.fromisoformat(appointment["start"]))

    async def _identify(self, text: str) -> Reply | None:
        """Find the appointment the caller means; a reply when a question is needed first."""
        s = self.state
        lang = self.lang
        if s.target is not None:
            return None
        if s.pending == "lookup_name":
            name = extract_name(text, lang, expecting=True)
            if name is None:
                if self._fail():
                    return self._offer_fallback()
                return self._ask("ask_name_again", "lookup_name")
            s.name = name
            s.appointments = await self.tools.find_caller_appointments(name=name)
            s.looked_up_by_name = True
        appointments = await self._find_appointments()
        if not appointments:
            if not s.looked_up_by_name:
                key = "lookup_name" if self._caller_phone() else "lookup_name_only"
                s.appointments = None
                return self._ask(key, "lookup_name")
            s.attempts = 0
            return self._offer_fallback(lead=say("no_appointment", lang))
        picked = self._pick(text, appointments)
        if picked is None:
            if s.pending == "pick_appointment" and self._fail():
                return self._offer_fallback()
            items = [f"{self._service_name(a['service'])} {self._appointment_text(a)}" for a in appointments[:3]]
            return self._ask("which_appointment", "pick_appointment", items=join_alternatives(items, lang))
        s.target = picked
        s.attempts = 0
        return None

    async def _cancel_turn(self, text: str) -> Reply:
        s = self.state
        lang = self.lang
        norm = lx.normalise(text)
        if s.pending == "confirm_cancel" and s.target is not None:
            if lx.matches(norm, lx.NO, lang):
                self.state = _State(name=s.name, phone=s.phone)
                return self._emit(say("kept", lang), "cancel", pending="anything_else")
            if lx.matches(norm, lx.YES, lang):
                try:
                    cancelled = await self.tools.cancel(s.target["id"])
                except NotFoundError:
                    return self._offer_fallback(lead=say("no_appointment", lang))
                slot = self._appointment_text(s.target)
                self.state = _State(name=s.name, phone=s.phone)
                return self._emit(
                    say("cancelled", lang, slot=slot),
                    "cancel",
                    pending="anything_else",
                    actions=(Action("cancel", dict(cancelled)),),
                    appointment=cancelled,
                )
            if self._fail():
                return self._offer_fallback()
        question = await self._identify(text)
        if question is not None:
            return question
        if not (s.target is not None):
            raise RuntimeError("rule engine state out of order: s.target is not None")
        return self._emit(
            say(
                "confirm_cancel",
                lang,
                service=self._service_name(s.target["service"]),
                slot=self._appointment_text(s.target),
            ),
            "cancel",
            pending="confirm_cancel",
        )

    async def _reschedule_turn(self, text: str, *, first: bool) -> Reply:
        s = self.state
        lang = self.lang
        norm = lx.normalise(text)
        identify_text, wish_text = text, ""
        if first:
            parts = re.split(r"\s(?:auf|to|into|zu|for)\s", text, maxsplit=1, flags=re.IGNORECASE)
            if len(parts) == 2:
                identify_text, wish_text = parts
        if s.pending == "confirm_reschedule" and s.target is not None and s.chosen is not None:
            when = self._parse_when(text)
            if when is None and lx.matches(norm, lx.YES, lang) and not lx.matches(norm, lx.NO, lang):
                return await self._do_reschedule()
            if when is None and lx.matches(norm, lx.NO, lang):
                s.chosen, s.offered, s.when = None, [], None
                return self._ask("ask_other_time", "when")
            if when is None:
                if self._fail():
                    return self._offer_fallback()
                return self._emit(
                    self._last_question.text if self._last_question else "",
                    "reschedule",
                    pending="confirm_reschedule",
                )
        had_target = s.target is not None
        question = await self._identify(identify_text)
        if question is not None:
            if wish_text:
                s.when_text = wish_text
                s.when = self._parse_when(wish_text)
            return question
        if not (s.target is not None):
            raise RuntimeError("rule engine state out of order: s.target is not None")
        s.service_id = s.target["service"]
        if not had_target:
            wish = wish_text or (text if s.pending not in ("lookup_name", "pick_appointment") and not first else "")
            if s.when is None and wish:
                s.when = self._parse_when(wish)
                s.when_text = wish if s.when else None
            if s.when is None:
                return self._emit(
                    say(
                        "reschedule_found",
                        lang,
                        service=self._service_name(s.service_id),
                        slot=self._appointment_text(s.target),
                    ),
                    "reschedule",
                    pending="when",
                )
            return await self._offer_for_reschedule()
        return await self._reschedule_slotting(text, norm)

    async def _reschedule_slotting(self, text: str, norm: str) -> Reply:
        s = self.state
        lang = self.lang
        when = self._parse_when(text)
        if when is not None:
            s.when, s.when_text, s.offered, s.chosen, s.offer_index = when, text, [], None, 0
            s.attempts = 0
            return await self._offer_for_reschedule()
        if s.pending == "when":
            if self._fail():
                return self._offer_fallback()
            return self._ask("ask_when_again", "when")
        if s.pending == "slot":
            if lx.matches(norm, lx.YES, lang) and not lx.matches(norm, lx.NO, lang):
                s.chosen = s.offered[s.offer_index]
                return self._confirm_reschedule()
            if lx.matches(norm, lx.NO, lang):
                s.offer_index += 1
                if s.offer_index < len(s.offered) and s.offer_index < 3:
                    return self._next_offer("reschedule")
                s.when, s.offered = None, []
                return self._ask("ask_other_time", "when")
            if self._fail():
                return self._offer_fallback()
        return self._emit(
            self._last_question.text if self._last_question else say("ask_when", lang),
            "reschedule",
            pending=s.pending,
        )

    async def _offer_for_reschedule(self) -> Reply:
        reply = await self._search_and_offer()
        if reply.intent == "book":
            reply = dataclasses.replace(reply, intent="reschedule")
            self._last = reply
            self._last_question = reply
            self.log.turns[-1].reply = reply
        return reply

    def _confirm_reschedule(self) -> Reply:
        s = self.state
        if not (s.target is not None and s.chosen is not None):
            raise RuntimeError("rule engine state out of order: s.target is not None and s.chosen is not None")
        return self._emit(
            say(
                "confirm_reschedule",
                self.lang,
                old=self._plain_slot_text(dt.datetime.fromisoformat(s.target["start"])),
                new=self._plain_slot_text(s.chosen.start),
            ),
            "reschedule",
            pending="confirm_reschedule",
        )

    async def _do_reschedule(self) -> Reply:
        s = self.state
        if not (s.target is not None and s.chosen is not None):
            raise RuntimeError("rule engine state out of order: s.target is not None and s.chosen is not None")
        try:
            moved = await self.tools.reschedule(s.target["id"], s.chosen.start, staff=s.chosen.staff_id)
        except ConflictError:
            s.chosen, s.offered = None, []
            reply = await self._search_and_offer(lead=say("slot_gone", self.lang))
            return reply
        slot = self._on_slot_text(s.chosen.start)
        previous = s.target["start"]
        self.state = _State(name=s.name, phone=s.phone)
        self.appointment = moved
        return self._emit(
            say("rescheduled", self.lang, slot=slot),
            "reschedule",
            pending="anything_else",
            actions=(Action("reschedule", {**dict(moved), "previous_start": previous}),),
            appointment=moved,
        )

    # -- messages ---------------------------------------------------------------------------

    async def _message_turn(self, text: str, norm: str) -> Reply:
        s = self.state
        lang = self.lang
        if s.pending == "reason":
            s.reason = text
            s.urgency = self._urgency(norm)
            self._absorb_name_and_contact(text)
        elif s.pending == "name":
            name = extract_name(text, lang, expecting=True)
            if name is None:
                if self._fail():
                    return await self._save_message()
                return self._ask("ask_name_again", "name")
            s.name = name
            s.attempts = 0
        elif s.pending == "phone":
            phone = extract_phone(text, lang, self._region)
            if phone is not None:
                s.phone_candidate = phone
                s.attempts = 0
                return self._emit(
                    say("confirm_phone", lang, phone=say_phone(phone, lang)),
                    "message",
                    pending="phone_confirm",
                )
            same = self._phone_answer(text, norm)
            if same is not None:
                s.phone = same
            elif lx.matches(norm, lx.NO, lang) and self.ctx.caller_number:
                return self._ask("ask_phone", "phone")
            else:
                if self._fail():
                    return self._offer_fallback()
                return self._ask("ask_phone_again", "phone")
        elif s.pending == "phone_confirm":
            phone = extract_phone(text, lang, self._region)
            if phone is not None and phone != s.phone_candidate:
                s.phone_candidate = phone
                return self._emit(
                    say("confirm_phone", lang, phone=say_phone(phone, lang)),
                    "message",
                    pending="phone_confirm",
                )
            if lx.matches(norm, lx.YES, lang) and not lx.matches(norm, lx.NO, lang):
                s.phone = s.phone_candidate
            else:
                if self._fail():
                    return self._offer_fallback()
                return self._ask("ask_phone_again", "phone")
        return await self._advance_message()

    async def _advance_message(self, lead: str = "", *, ask_reason: bool = True) -> Reply:
        s = self.state
        if s.reason is None:
            if not ask_reason:
                return self._ask("ask_reason_short", "reason", lead=lead)
            return self._ask("ask_reason", "reason", lead=lead)
        if s.name is None:
            s.name = self.ctx.known_name
        if s.name is None:
            return self._ask("ask_name_message", "name", lead=lead)
        if s.phone is None:
            prefix = (lead + " ") if lead else ""
            return self._emit(prefix + self._phone_question(), "message", pending="phone")
        return await self._save_message()

    async def _save_message(self) -> Reply:
        s = self.state
        reason = s.reason or ""
        message_id = await self.tools.take_message(name=s.name, phone=s.phone, reason=reason, urgency=s.urgency)
        data = {"id": message_id, "name": s.name, "phone": s.phone, "reason": reason, "urgency": s.urgency}
        self.messages.append(data)
        phone = s.phone
        self.state = _State(name=s.name, phone=s.phone)
        if phone:
            text = say("message_taken", self.lang, phone=say_phone(phone, self.lang))
        else:
            text = say("message_taken_no_phone", self.lang)
        return self._emit(text, "message", pending="anything_else", actions=(Action("message", data),))

    # -- data-subject requests (R-8.7) --------------------------------------------------------

    async def _advance_dsar(self, text: str) -> Reply:
        s = self.state
        self._absorb_name_and_contact(text)
        phone = self._caller_phone()
        if phone is None and s.email is None:
            return self._emit(say("dsar_ask_contact", self.lang), "dsar", pending="dsar_contact")
        return await self._record_dsar()

    async def _dsar_turn(self, text: str) -> Reply:
        s = self.state
        phone = extract_phone(text, self.lang, self._region)
        email = extract_email(text, self.lang)
        if phone is None and email is None:
            if self._fail():
                return self._offer_fallback()
            return self._emit(say("dsar_ask_contact", self.lang), "dsar", pending="dsar_contact")
        s.phone = phone or s.phone
        s.email = email or s.email
        return await self._record_dsar()

    async def _record_dsar(self) -> Reply:
        s = self.state
        kind = s.dsar_kind
        request_id = await self.tools.record_dsar_request(
            kind, phone=self._caller_phone(), email=s.email, name=self._caller_name()
        )
        text = say("dsar_recorded", self.lang, kind=DSAR_KIND_WORDS[kind][self.lang])
        self.state = _State(name=s.name, phone=s.phone, email=s.email)
        return self._emit(
            text, "dsar", pending="anything_else", actions=(Action("dsar", {"id": request_id, "kind": kind}),)
        )


def services_sentence(profile: TenantProfile, language: Language) -> str:
    return join_words([profile.text(s.name, language) for s in profile.services], language)
