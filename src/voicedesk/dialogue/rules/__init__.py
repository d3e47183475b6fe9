"""The offline rule engine (German and English): ``RuleEngine().open(ctx, tools)``."""

from __future__ import annotations

from voicedesk.dialogue.engine import CallerContext
from voicedesk.dialogue.rules.conversation import RuleConversation
from voicedesk.dialogue.tools import DialogueTools

__all__ = ["RuleConversation", "RuleEngine"]


class RuleEngine:
    """The default ``DialogueEngine``: deterministic, no network, no model."""

    name = "rules"

    def open(self, ctx: CallerContext, tools: DialogueTools) -> RuleConversation:
        return RuleConversation(ctx, tools)
