"""FAQ answers from the business profile, for both engines (see ``rules/faq.py``)."""

from __future__ import annotations

from voicedesk.dialogue.rules.faq import answer_faq, answer_topic, faq_topic

__all__ = ["answer_faq", "answer_topic", "faq_topic"]
