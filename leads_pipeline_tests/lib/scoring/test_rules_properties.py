"""Scoring over generated configurations and leads: the score is a whole number from 0 to 100, its components are
whole points that add up to it, and more of what a configuration rewards never lowers it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from leads_pipeline.lib.scoring.config import ScoringConfig, parse_config
from leads_pipeline.lib.scoring.rules import LeadInput, Rules

NOW = datetime(2026, 11, 28, tzinfo=UTC)
FIELDS = ["email", "phone", "title", "industry", "country", "custom.Notes"]
WEIGHT = st.floats(0, 5, allow_nan=False)
POINTS = st.floats(-50, 50, allow_nan=False)


@st.composite
def configs(draw: st.DrawFn) -> ScoringConfig:
    weights = dict(
        zip(
            ["dataCompleteness", "companyFit", "engagement", "recency"],
            draw(st.lists(WEIGHT, min_size=4, max_size=4)),
            strict=True,
        )
    )
    weights["recency"] += 0.1  # at least one weight above 0
    mins = sorted(draw(st.lists(st.floats(-10, 1000, allow_nan=False), min_size=1, max_size=4, unique=True)))
    steps = [
        {"min": m, "points": p}
        for m, p in zip(mins, sorted(draw(st.lists(POINTS, min_size=len(mins), max_size=len(mins)))), strict=True)
    ]
    lower = min(s["points"] for s in steps)
    return parse_config(
        {
            "weights": weights,
            "completeness": {
                "fields": {f: draw(WEIGHT) + 0.1 for f in draw(st.sets(st.sampled_from(FIELDS), min_size=1))}
            },
            "companyFit": {
                "industries": draw(st.lists(st.sampled_from(["Software", "Retail", "Banking"]), max_size=2)),
                "employees": [{"min": 50, "max": 500}] if draw(st.booleans()) else [],
                "titles": draw(st.lists(st.sampled_from(["vp", "ceo", "head"]), max_size=2)),
                "weights": {"industries": draw(WEIGHT), "titles": draw(WEIGHT)},
            },
            "engagement": {
                "signals": [
                    {"field": "custom.Visits", "steps": steps, "default": draw(st.floats(-50, lower))},
                    {
                        "field": "source",
                        "values": {"Referral": draw(POINTS), "Cold": draw(POINTS)},
                        "missing": draw(POINTS),
                    },
                ],
                **({"maxPoints": draw(st.floats(1, 200))} if draw(st.booleans()) else {}),
            },
            "recency": {"activityField": "custom.Last Activity", "activityShare": draw(st.floats(0, 1))},
        }
    )


TIMES = st.datetimes(timezones=st.builds(timezone, st.timedeltas(timedelta(hours=-14), timedelta(hours=14))))
TEXT = st.none() | st.text(max_size=8) | st.sampled_from(["Software", "VP Sales", "Referral", "cold"])
JSON = TEXT | st.integers(-10, 10**6) | st.floats() | st.booleans()
"""A custom field's value as JSON holds it (a CRM pull writes numbers and booleans too)."""


@st.composite
def leads(draw: st.DrawFn) -> LeadInput:
    columns: dict[str, Any] = {f: draw(TEXT) for f in ["email", "phone", "title", "industry", "country", "source"]}
    columns["employee_count"] = draw(st.none() | st.integers(0, 10**6))
    activity = st.none() | TIMES.map(datetime.isoformat) | st.text(max_size=8)
    custom = {"Notes": draw(JSON), "Visits": draw(JSON), "Last Activity": draw(activity)}
    updated = st.none() | st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC))
    return LeadInput(1, columns, custom, draw(st.lists(st.sampled_from(["HubSpot", "AWS"]))), draw(updated))


@given(configs(), leads())
@example(
    parse_config({"recency": {"activityField": "custom.Last Activity"}}),
    LeadInput(1, {}, {"Last Activity": "0001-01-01T00:00:00+01:00"}),  # .NET's empty date east of UTC
)
def test_the_score_is_0_to_100_and_its_components_add_up_to_it(config: ScoringConfig, lead: LeadInput) -> None:
    result = Rules(config).score(lead, NOW)
    assert 0 <= result.score <= 100
    assert sum(result.components.values()) == result.score
    assert all(points >= 0 for points in result.components.values())


@given(configs(), leads(), st.floats(-10, 1000, allow_nan=False), st.floats(0, 1000, allow_nan=False))
def test_more_of_a_signal_whose_steps_rise_never_lowers_the_score(
    config: ScoringConfig, lead: LeadInput, visits: float, more: float
) -> None:
    rules = Rules(config)

    def score(value: Any) -> int:
        return rules.score(
            LeadInput(1, lead.columns, {**lead.custom, "Visits": value}, lead.technologies, lead.data_updated_at), NOW
        ).score

    assert score(visits + more) >= score(visits)
