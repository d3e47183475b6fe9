"""The port between a conversation channel (phone call, text chat) and the assistant.

A ``DialogueEngine`` opens one ``Conversation`` per call. The channel feeds it caller
utterances (already transcribed) and speaks or prints the ``Reply``. Replies carry
actions (book, transfer, end the call …) that the channel's outer layer executes; the
engine itself reaches business services only through the tools port it is given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from voicedesk.dialogue.tools import DialogueTools
from voicedesk.domain.profile import Language, TenantProfile

Intent = Literal["book", "cancel", "reschedule", "faq", "message", "human", "goodbye", "dsar", "other"]
ActionType = Literal["book", "cancel", "reschedule", "message", "transfer", "end_call", "dsar"]
Expectation = Literal["free", "yes_no", "digits", "name", "email", "when"]


@dataclass(frozen=True)
class CallerContext:
    """What the assistant may know at the start of a conversation."""

    profile: TenantProfile
    language: Language
    now: dt.datetime  # aware; the conversation's reference "now"
    caller_number: str | None = None  # E.164, None when withheld
    known_name: str | None = None  # None when unknown or processing is restricted
    channel: Literal["phone", "text"] = "phone"


@dataclass(frozen=True)
class Action:
    """Something the channel must carry out or record, e.g. ``transfer``.

    ``transfer`` data: ``{"mode": "cold"|"warm", "target": E.164 | None, "summary": str}``.
    """

    type: ActionType
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """One assistant turn. ``sentences`` is ``text`` split for sentence-by-sentence TTS."""

    text: str
    intent: Intent | None = None
    actions: tuple[Action, ...] = ()
    expects: Expectation = "free"
    understood: Mapping[str, Any] = field(default_factory=dict)
    appointment: Mapping[str, Any] | None = None

    @property
    def end_call(self) -> bool:
        return any(a.type == "end_call" for a in self.actions)

    @property
    def transfer(self) -> Action | None:
        return next((a for a in self.actions if a.type == "transfer"), None)


def reply_to_json(reply: Reply) -> dict[str, Any]:
    """The reply as one ``voicedesk chat --jsonl`` output object (issue 4's format).

    ``dsar`` actions are kept (type ``dsar``) so scripts can see that a request was recorded.
    """
    return {
        "reply": reply.text,
        "intent": reply.intent,
        "understood": dict(reply.understood),
        "actions": [{"type": a.type, **dict(a.data)} for a in reply.actions],
        "appointment": dict(reply.appointment) if reply.appointment is not None else None,
        "expects": reply.expects,
    }


@dataclass
class Turn:
    """One utterance in a conversation's log; assistant turns carry their ``Reply``."""

    speaker: Literal["caller", "assistant"]
    text: str
    reply: Reply | None = None


@dataclass
class ConversationLog:
    """What was said and done in one conversation; input to the post-call summary."""

    ctx: CallerContext
    turns: list[Turn] = field(default_factory=list)

    @property
    def replies(self) -> list[Reply]:
        return [t.reply for t in self.turns if t.reply is not None]

    @property
    def caller_lines(self) -> list[str]:
        return [t.text for t in self.turns if t.speaker == "caller"]


class Conversation(Protocol):
    """One call's dialogue state."""

    async def greet(self) -> Reply:
        """The first assistant turn (after the consent gate on the phone)."""
        ...

    async def respond(self, utterance: str) -> Reply:
        """Answer one caller utterance; an empty string means the caller stayed silent."""
        ...

    async def transfer_failed(self, reason: str) -> Reply:
        """The human did not pick up (``no-answer``, ``busy``…): offer to take a message."""
        ...

    def heard(self, text: str) -> None:
        """Barge-in: the caller heard only ``text`` of the last reply."""
        ...


class DialogueEngine(Protocol):
    """Creates conversations; implementations: rule engine (default), LLM engine."""

    name: str

    def open(self, ctx: CallerContext, tools: DialogueTools) -> Conversation:
        """Start a conversation that reaches business services through ``tools``."""
        ...
