"""Time understanding: German and English expressions resolved at a fixed "now" (R-3.4).

The tables are ``when_cases_de.yaml`` and ``when_cases_en.yaml``; each row names the text,
the expected start (ISO-8601 with the UTC offset, so DST mistakes show) and grain, and
optionally end, earliest, latest, excluded weekdays and the asap flag.
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from voicedesk.domain.numbers import Language
from voicedesk.domain.when import When, localize, parse_when

BERLIN = ZoneInfo("Europe/Berlin")
NOWS = {
    "default": datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN),  # a Wednesday
    "spring": datetime(2026, 3, 26, 10, 0, tzinfo=BERLIN),  # DST starts Sunday 2026-03-29
    "autumn": datetime(2026, 10, 22, 10, 0, tzinfo=BERLIN),  # DST ends Sunday 2026-10-25
}
HERE = Path(__file__).parent


def _cases(language: Language) -> list[Any]:
    rows: list[dict[str, Any]] = yaml.safe_load((HERE / f"when_cases_{language}.yaml").read_text("utf-8"))
    return [pytest.param(language, row, id=f"{row.get('now', 'default')}:{row['text']}") for row in rows]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="minutes")


def _hhmm(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


@pytest.mark.req("R-3.4")
@pytest.mark.parametrize(("language", "row"), _cases("de") + _cases("en"))
def test_expression(language: Language, row: dict[str, Any]) -> None:
    now = NOWS[row.get("now", "default")]
    got = parse_when(row["text"], now=now, language=language, tz=BERLIN)
    if row.get("expect_none"):
        assert got is None
        return
    assert got is not None, "not understood"
    assert (_iso(got.start), got.grain) == (row["start"], row["grain"])
    assert got.start.tzinfo is BERLIN
    if "end" in row:
        assert _iso(got.end) == row["end"]
    if "earliest" in row:
        assert _hhmm(got.earliest) == row["earliest"]
    if "latest" in row:
        assert _hhmm(got.latest) == row["latest"]
    if "excluded" in row:
        assert sorted(got.excluded_weekdays) == row["excluded"]
    assert got.asap == row.get("asap", False)


def test_tables_are_large_enough() -> None:
    assert len(_cases("de")) >= 150
    assert len(_cases("en")) >= 150


def test_now_in_another_zone_is_converted() -> None:
    now_utc = datetime(2026, 11, 25, 22, 30, tzinfo=ZoneInfo("UTC"))  # 23:30 in Berlin
    got = parse_when("morgen", now=now_utc, language="de", tz=BERLIN)
    assert got is not None
    assert _iso(got.start) == "2026-11-26T00:00+01:00"


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_when("morgen", now=datetime(2026, 11, 25, 10, 0), language="de", tz=BERLIN)  # noqa: DTZ001


def test_to_json_uses_iso_with_offset() -> None:
    got = parse_when("Dienstag nach 15 Uhr, nicht freitags", now=NOWS["default"], language="de", tz=BERLIN)
    assert got is not None
    assert got.to_json() == {
        "start": "2026-12-01T15:00:00+01:00",
        "end": "2026-12-02T00:00:00+01:00",
        "grain": "part_of_day",
        "earliest": "15:00",
        "latest": None,
        "excluded_weekdays": [4],
        "asap": False,
    }
    exact = parse_when("um 15 Uhr", now=NOWS["default"], language="de", tz=BERLIN)
    assert exact is not None
    assert exact.is_exact
    assert exact.to_json()["end"] is None


def test_localize_moves_a_missing_time_forward_and_picks_the_first_of_two() -> None:
    from datetime import date

    assert _iso(localize(date(2026, 3, 29), time(2, 30), BERLIN)) == "2026-03-29T03:30+02:00"
    assert _iso(localize(date(2026, 10, 25), time(2, 30), BERLIN)) == "2026-10-25T02:30+02:00"


def test_when_is_frozen() -> None:
    w = When(start=NOWS["default"])
    with pytest.raises(AttributeError):
        w.grain = "hour"  # type: ignore[misc]
