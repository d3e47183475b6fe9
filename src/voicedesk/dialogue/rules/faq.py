"""Answers to common questions, taken only from the business profile (pure, no I/O).

Both engines use it: the rule engine directly, the LLM engine as its ``answer_faq`` tool.
"""

from __future__ import annotations

from voicedesk.dialogue.rules.extract import find_service
from voicedesk.dialogue.rules.lexicon import (
    ADDRESS,
    OPENING_HOURS,
    PRICES,
    PRIVACY_NOTICE,
    matches,
    normalise,
)
from voicedesk.dialogue.speech import join_words
from voicedesk.domain.availability import opening_hours_text
from voicedesk.domain.profile import Language, TenantProfile

FaqTopic = str  # "opening_hours" | "address" | "prices" | "privacy" | an FAQ entry id


def faq_topic(question: str, profile: TenantProfile, language: Language) -> FaqTopic | None:
    """Which question ``question`` asks, or ``None`` when it is no FAQ question."""
    norm = normalise(question)
    best: tuple[int, str] | None = None
    for entry in profile.faq:
        for keyword in entry.keywords.get(language, []) + entry.keywords.get(profile.language, []):
            kw = normalise(keyword).strip()
            if kw and (f" {kw} " in norm or (len(kw) >= 6 and kw in norm)) and (best is None or len(kw) > best[0]):
                best = (len(kw), entry.id)
    if best:
        return best[1]
    if matches(norm, PRICES, language):
        return "prices"
    if matches(norm, ADDRESS, language):
        return "address"
    if matches(norm, OPENING_HOURS, language):
        return "opening_hours"
    if matches(norm, PRIVACY_NOTICE, language):
        return "privacy"
    return None


def answer_faq(profile: TenantProfile, question: str, language: Language) -> str | None:
    """The answer to ``question`` from the profile, or ``None`` when the profile has none."""
    topic = faq_topic(question, profile, language)
    if topic is None:
        return None
    return answer_topic(profile, topic, language, question=question)


def answer_topic(profile: TenantProfile, topic: FaqTopic, language: Language, *, question: str = "") -> str | None:
    """The answer for a known ``topic`` (see ``faq_topic``)."""
    de = language == "de"
    if topic == "opening_hours":
        return ("Unsere Öffnungszeiten: " if de else "Our opening hours: ") + opening_hours_text(profile, language)
    if topic == "address":
        if not profile.address:
            return None
        return f"Sie finden uns hier: {profile.address}." if de else f"You can find us at {profile.address}."
    if topic == "privacy":
        return profile.text(profile.privacy_notice, language).format(name=profile.name)
    if topic == "prices":
        service = find_service(question, profile, language) if question else None
        if service is not None and service.price:
            name = profile.text(service.name, language)
            price = profile.text(service.price, language)
            return f"{name} kostet {price}." if de else f"{name} costs {price}."
        priced = [
            f"{profile.text(s.name, language)} {profile.text(s.price, language)}" for s in profile.services if s.price
        ]
        if not priced:
            return None
        lead = "Unsere Preise: " if de else "Our prices: "
        return lead + join_words(priced, language) + "."
    for entry in profile.faq:
        if entry.id == topic:
            return profile.text(entry.answer, language)
    return None
