"""Every way the model endpoint can fail maps to a ``ProviderError`` category (R-12.1 options too)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from tests.support.scenarios import load_profile
from voicedesk.dialogue.engine import CallerContext
from voicedesk.dialogue.llm import PRIVACY_OPTIONS, LlmEngine, LlmSettings, system_prompt, translate_http_error
from voicedesk.dialogue.memory_tools import InMemoryDialogueTools
from voicedesk.domain.errors import ErrorCategory

PROFILES = Path(__file__).resolve().parents[2] / "scenarios" / "profiles"


def _conversation(handler: httpx.MockTransport) -> tuple[LlmEngine, CallerContext, InMemoryDialogueTools]:
    profile = load_profile(PROFILES / "praxis.yaml")
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=profile.tz)
    ctx = CallerContext(profile=profile, language="de", now=now, caller_number="+4917112345678")
    engine = LlmEngine(LlmSettings(base_url="http://llm.test/v1", model="m", max_failures=5), transport=handler)
    return engine, ctx, InMemoryDialogueTools(profile, now=now)


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (400, ErrorCategory.BAD_REQUEST),
        (401, ErrorCategory.AUTH),
        (403, ErrorCategory.AUTH),
        (404, ErrorCategory.NOT_FOUND),
        (422, ErrorCategory.BAD_REQUEST),
        (429, ErrorCategory.RATE_LIMITED),
        (500, ErrorCategory.SERVER),
        (502, ErrorCategory.SERVER),
        (503, ErrorCategory.UNAVAILABLE),
    ],
)
async def test_http_status_maps_to_category(status: int, category: ErrorCategory) -> None:
    engine, ctx, tools = _conversation(httpx.MockTransport(lambda request: httpx.Response(status, json={})))
    conversation = engine.open(ctx, tools)
    reply = await conversation.respond("Wann haben Sie geöffnet?")
    await conversation.aclose()
    assert conversation.last_error is not None
    assert conversation.last_error.category is category
    assert conversation.last_error.code == "provider"
    assert reply.intent == "faq"  # the rule engine answered instead


def _raise(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("transport", "category"),
    [
        (_raise(httpx.ConnectError("refused")), ErrorCategory.NETWORK),
        (_raise(httpx.ReadTimeout("slow")), ErrorCategory.TIMEOUT),
        (_raise(httpx.RemoteProtocolError("broken")), ErrorCategory.NETWORK),
        (httpx.MockTransport(lambda request: httpx.Response(200, text="not json")), ErrorCategory.SERVER),
        (httpx.MockTransport(lambda request: httpx.Response(200, json={"choices": []})), ErrorCategory.SERVER),
    ],
)
async def test_transport_failures_map_to_category(transport: httpx.MockTransport, category: ErrorCategory) -> None:
    engine, ctx, tools = _conversation(transport)
    conversation = engine.open(ctx, tools)
    await conversation.respond("Hallo")
    await conversation.aclose()
    assert conversation.last_error is not None
    assert conversation.last_error.category is category


def test_translation_is_complete_for_other_errors() -> None:
    assert translate_http_error(RuntimeError("x"), "generic").category is ErrorCategory.SERVER


@pytest.mark.req("R-12.1")
def test_privacy_options_per_provider() -> None:
    assert PRIVACY_OPTIONS["openai"] == {"store": False}
    assert all(not options for provider, options in PRIVACY_OPTIONS.items() if provider != "openai")


@pytest.mark.req("R-12.2")
def test_system_prompt_forbids_decisions_and_carries_the_profile() -> None:
    profile = load_profile(PROFILES / "praxis.yaml")
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=profile.tz)
    prompt = system_prompt(CallerContext(profile=profile, language="de", now=now))
    assert "Praxis Dr. Berger" in prompt
    assert "Monday, 30 November 2026, 09:00" in prompt
    assert "vaccination: Impfung (15 min, 25 Euro)" in prompt
    assert "never give or decide medical, legal or financial matters" in prompt.lower()
    assert "withheld" in prompt


@pytest.mark.req("R-12.1")
@pytest.mark.parametrize(
    ("base_url", "provider"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://myres.openai.azure.com/openai/deployments/gpt", "azure"),
        ("https://api.mistral.ai/v1", "mistral"),
        ("http://127.0.0.1:11434/v1", "ollama"),
        ("http://10.0.0.5:8000/v1", "generic"),
    ],
)
def test_provider_is_recognised_from_the_url(base_url: str, provider: str) -> None:
    assert LlmSettings(base_url=base_url, model="m").resolved_provider == provider
