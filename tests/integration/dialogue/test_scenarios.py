"""The scenario suite (issue 4 acceptance): ≥ 95 % of scripted calls end as expected."""

from __future__ import annotations

import pytest

from tests.support.scenarios import load_scenarios, run_scenario
from voicedesk.dialogue.rules import RuleEngine

PASS_RATE = 0.95


@pytest.mark.req("R-4.1")
@pytest.mark.req("R-3.4")
@pytest.mark.req("R-12.2")
async def test_scenarios_through_the_rule_engine(capsys: pytest.CaptureFixture[str]) -> None:
    scenarios = load_scenarios("de", "en")
    assert sum(s.language == "de" for s in scenarios) >= 40
    assert sum(s.language == "en" for s in scenarios) >= 40
    results = [await run_scenario(s, RuleEngine()) for s in scenarios]
    failed = [r for r in results if not r.ok]
    with capsys.disabled():
        for result in failed:
            print("\n" + result.transcript())  # noqa: T201
        print(f"\nscenarios: {len(results) - len(failed)}/{len(results)} as expected")  # noqa: T201
    assert len(results) - len(failed) >= PASS_RATE * len(results)
