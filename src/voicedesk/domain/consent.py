"""The consent gate at the start of every call (R-4.2): a pure state machine.

The gate decides two purposes together, ``recording`` and ``transcription``. It never
reads a clock and does no I/O: the caller of each method passes the time, and every
decision comes back as a ``ConsentDecision`` value that the call runtime stores.

Modes:

``ask``
    The announcement is followed by a question. A clear yes or no by voice, or key 1 / 2,
    decides. An unclear answer or silence re-asks once; after that, silence or another
    unclear answer counts as no.
``announce``
    Recording starts once the announcement has played without objection.

An objection ("nicht aufzeichnen", "no recording", key 2 …) at any moment refuses the
consent while it is still open and withdraws it once it was granted; the runtime then
stops recording at once and discards what was recorded of the call.

States (``GateState``)::

    ANNOUNCING ──announcement_played──> ASKING (ask) ──yes/1──> GRANTED ──objection/2──> WITHDRAWN
        │                                  │  unclear/silence: re-ask once
        │  (announce) ──────────────────────┼──────────────────> GRANTED
        └── objection/2 ───────────────────>┴── no/2/silence ──> REFUSED
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Purpose = Literal["recording", "transcription"]
Decision = Literal["granted", "refused", "withdrawn"]
Method = Literal["voice", "key", "default", "silence"]
ConsentMode = Literal["ask", "announce"]
Answer = Literal["yes", "no", "objection"]

PURPOSES: tuple[Purpose, ...] = ("recording", "transcription")


@dataclass(frozen=True)
class ConsentTexts:
    """The texts a caller hears at the gate, under the version id they were published as (R-14)."""

    version: str
    announcement: str
    question: str = ""

    def heard(self, mode: ConsentMode) -> str:
        """The exact text the caller was played in ``mode`` (what the hash covers)."""
        if mode == "ask" and self.question:
            return f"{self.announcement}\n{self.question}"
        return self.announcement

    def sha256(self, mode: ConsentMode) -> str:
        return hashlib.sha256(self.heard(mode).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ConsentDecision:
    """One stored consent record: who decided what, how, when, on which text."""

    purpose: Purpose
    decision: Decision
    method: Method
    at: dt.datetime
    text_version: str
    text_sha256: str
    reason: str


class GateState(enum.Enum):
    ANNOUNCING = "announcing"
    ASKING = "asking"
    GRANTED = "granted"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class GateStep:
    """What one input did to the gate.

    ``decisions`` are new records to store; ``reask`` asks the runtime to play the question
    again; ``settled`` is true on the step that closed the gate (continue with the greeting);
    ``consumed`` says the input was meant for the gate and must not reach the dialogue.
    """

    decisions: tuple[ConsentDecision, ...] = ()
    reask: bool = False
    settled: bool = False
    consumed: bool = False


# --- lexicons ------------------------------------------------------------------------
_OBJECTION_PHRASES = (
    "nicht aufzeichnen", "nicht aufnehmen", "nicht mitschneiden", "nicht aufgezeichnet",
    "nicht aufgenommen", "keine aufnahme", "keine aufzeichnung", "kein mitschnitt",
    "aufnahme stoppen", "aufnahme beenden", "aufzeichnung stoppen", "aufzeichnung beenden",
    "ich widerspreche", "widerrufe die einwilligung", "einwilligung widerrufen",
    "no recording", "stop recording", "stop the recording", "dont record", "do not record",
    "don't record", "not be recorded", "don't want to be recorded",
    "dont want to be recorded", "do not want to be recorded", "no recordings", "i object",
)
_NO_PHRASES = (
    "lieber nicht", "nicht einverstanden", "auf keinen fall", "bitte nicht", "eher nicht",
    "möchte ich nicht", "will ich nicht", "nein danke",
    "rather not", "i dont agree", "i don't agree", "i do not agree", "do not agree",
    "don't agree", "dont agree", "not okay", "not ok", "no thanks", "no thank you", "please dont",
    "please don't", "i disagree",
)
_NO_WORDS = frozenset({"nein", "nee", "nö", "ne", "keinesfalls", "niemals", "no", "nope", "nah", "never"})
_YES_PHRASES = (
    "in ordnung", "na klar", "of course", "go ahead", "i agree", "that's fine", "thats fine",
    "das passt", "kein problem", "no problem", "yes please", "ja bitte",
)
_YES_WORDS = frozenset({
    "ja", "jawohl", "jo", "jep", "gerne", "gern", "einverstanden", "okay", "ok", "klar", "natürlich",
    "sicher", "selbstverständlich", "passt", "genau", "richtig", "zustimmen", "stimme",
    "yes", "yeah", "yep", "yup", "sure", "agreed", "agree", "alright", "fine", "certainly", "correct",
})

_NON_WORD = re.compile(r"[^\w'äöüß]+")


def normalize(text: str) -> str:
    """Lowercase, NFC, punctuation folded to single spaces (apostrophes kept)."""
    folded = unicodedata.normalize("NFC", text).lower().replace("’", "'")
    return " ".join(_NON_WORD.sub(" ", folded).split())


def _contains_phrase(norm: str, phrases: tuple[str, ...]) -> bool:
    padded = f" {norm} "
    return any(f" {p} " in padded for p in phrases)


def is_objection(text: str) -> bool:
    """True if ``text`` objects to recording ("nicht aufzeichnen", "no recording" …)."""
    return _contains_phrase(normalize(text), _OBJECTION_PHRASES)


def classify_answer(text: str) -> Answer | None:
    """Read a yes/no answer (German or English); ``None`` when it is unclear.

    Objections win, then explicit negative phrases ("lieber nicht", "nicht einverstanden"),
    then single words; an answer with both yes and no words is unclear.
    """
    norm = normalize(text)
    if not norm:
        return None
    if _contains_phrase(norm, _OBJECTION_PHRASES):
        return "objection"
    if _contains_phrase(norm, _NO_PHRASES):
        return "no"
    words = set(norm.split())
    has_no = bool(words & _NO_WORDS)
    has_yes = bool(words & _YES_WORDS) or _contains_phrase(norm, _YES_PHRASES)
    if has_no and not has_yes:
        return "no"
    if has_yes and not has_no:
        return "yes"
    return None


# --- the gate ------------------------------------------------------------------------
class ConsentGate:
    """One call's consent state; feed it what happened, store what it returns."""

    def __init__(self, mode: ConsentMode, texts: ConsentTexts, *, max_asks: int = 2) -> None:
        if max_asks < 1:
            raise RuntimeError("ConsentGate needs max_asks >= 1: the question is asked at least once")
        self.mode: ConsentMode = mode
        self.texts = texts
        self.max_asks = max_asks
        self.state = GateState.ANNOUNCING
        self.asks = 0
        self.decisions: list[ConsentDecision] = []

    @property
    def open(self) -> bool:
        """Still undecided (announcement or question phase)."""
        return self.state in (GateState.ANNOUNCING, GateState.ASKING)

    @property
    def granted(self) -> bool:
        """Recording and transcription are allowed right now."""
        return self.state is GateState.GRANTED

    # events -------------------------------------------------------------------------
    def announcement_played(self, at: dt.datetime) -> GateStep:
        """The announcement finished playing (its mark was echoed)."""
        if self.state is not GateState.ANNOUNCING:
            return GateStep()
        if self.mode == "announce":
            return self._decide("granted", "default", at, "announcement played without objection")
        self.state = GateState.ASKING
        return GateStep()

    def question_played(self) -> None:
        """The consent question finished playing; the answer window begins."""
        if self.state is GateState.ASKING:
            self.asks += 1

    def heard(self, text: str, at: dt.datetime) -> GateStep:
        """A transcribed caller utterance."""
        answer = classify_answer(text)
        if answer == "objection":
            return self._object("voice", at, "caller objected by voice")
        if self.state is GateState.ASKING:
            if answer == "yes":
                return self._decide("granted", "voice", at, "caller agreed by voice")
            if answer == "no":
                return self._decide("refused", "voice", at, "caller declined by voice")
            return self._unclear("voice", at, "no clear answer")
        return GateStep()

    def key(self, digit: str, at: dt.datetime) -> GateStep:
        """A DTMF key: 1 agrees while the gate is open, 2 objects at any time."""
        if digit == "2":
            return self._object("key", at, "caller pressed 2")
        if digit == "1" and self.open and self.mode == "ask":
            return self._decide("granted", "key", at, "caller pressed 1")
        return GateStep()

    def silence(self, at: dt.datetime) -> GateStep:
        """No answer within the answer window after the question."""
        if self.state is not GateState.ASKING:
            return GateStep()
        return self._unclear("silence", at, "no answer")

    def ended(self, at: dt.datetime) -> GateStep:
        """The call ended (hang-up, transfer) while the gate was still open: counts as no."""
        if not self.open:
            return GateStep()
        return self._decide("refused", "default", at, "call ended before a decision")

    # transitions --------------------------------------------------------------------
    def _unclear(self, method: Method, at: dt.datetime, reason: str) -> GateStep:
        if self.asks < self.max_asks:
            return GateStep(reask=True, consumed=True)
        return self._decide("refused", method, at, f"{reason} after {self.asks} questions; counted as no")

    def _object(self, method: Method, at: dt.datetime, reason: str) -> GateStep:
        if self.open:
            return self._decide("refused", method, at, reason)
        if self.state is GateState.GRANTED:
            return self._decide("withdrawn", method, at, reason)
        return GateStep(consumed=True)  # already refused or withdrawn: nothing new to record

    def _decide(self, decision: Decision, method: Method, at: dt.datetime, reason: str) -> GateStep:
        if at.tzinfo is None:
            raise RuntimeError("ConsentGate needs aware datetimes: pass datetime.now(UTC), not a naive time")
        settled = self.open
        self.state = {
            "granted": GateState.GRANTED,
            "refused": GateState.REFUSED,
            "withdrawn": GateState.WITHDRAWN,
        }[decision]
        sha = self.texts.sha256(self.mode)
        made = tuple(
            ConsentDecision(purpose=p, decision=decision, method=method, at=at,
                            text_version=self.texts.version, text_sha256=sha, reason=reason)
            for p in PURPOSES
        )
        self.decisions.extend(made)
        return GateStep(decisions=made, settled=settled, consumed=True)
