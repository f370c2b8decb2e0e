"""Each component's arithmetic, the whole-point rounding, bands and explanations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from leads_pipeline.lib.scoring.config import Signal, parse_config
from leads_pipeline.lib.scoring.rules import (
    LeadInput,
    Reason,
    Rules,
    ScoreResult,
    score_lead,
    signal_points,
    whole_points,
)

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def _config(**sections: Any) -> Any:
    return parse_config(sections)


def _only(component: str, **sections: Any) -> Any:
    weights = {"dataCompleteness": 0, "companyFit": 0, "engagement": 0, "recency": 0, component: 1}
    return parse_config({"weights": weights, **sections})


def test_completeness_is_the_weighted_share_of_filled_fields() -> None:
    config = _only("dataCompleteness", completeness={"fields": {"email": 3, "phone": 1, "custom.Notes": 1}})
    lead = LeadInput(1, {"email": "a@b.co", "phone": "  "}, custom={"Notes": "called"})
    result = score_lead(lead, config, NOW)
    assert result.score == 80  # (3 + 1) / 5; a blank phone is missing
    assert result.components == {"dataCompleteness": 80, "companyFit": 0, "engagement": 0, "recency": 0}
    assert any("missing phone" in reason for reason in result.explanation(5))


def test_company_fit_weights_each_configured_criterion() -> None:
    icp = {
        "industries": ["Computer Software"],
        "employees": [{"min": 50, "max": 500}],
        "countries": ["US"],
        "titles": ["vp"],
        "technologies": ["HubSpot"],
        "weights": {"industries": 2, "employees": 2},
    }
    config = _only("companyFit", companyFit=icp)
    lead = LeadInput(
        1,
        {"industry": "computer software", "employee_count": 120, "country": "DE", "title": "VP Sales"},
        technologies=["hubspot", "AWS"],
    )
    result = score_lead(lead, config, NOW)
    # matched: industry 2, employees 2, title 1, technologies 1 of a total of 7 (country missed)
    assert result.score == round(100 * 6 / 7)
    assert "outside the ICP on countries" in " ".join(result.explanation(10))
    unknown = score_lead(LeadInput(2, {}), config, NOW)
    assert unknown.score == 0


def test_engagement_steps_values_and_cap() -> None:
    signals = [
        {"field": "custom.Visits", "steps": [{"min": 1, "points": 5}, {"min": 10, "points": 20}]},
        {"field": "source", "values": {"Referral": 30, "Cold list": -10}},
    ]
    config = _only("engagement", engagement={"signals": signals})  # full = 20 + 30 = 50 points
    assert score_lead(LeadInput(1, {"source": "referral"}, {"Visits": "12"}), config, NOW).score == 100
    assert score_lead(LeadInput(2, {"source": "web"}, {"Visits": 3}), config, NOW).score == 10
    assert score_lead(LeadInput(3, {"source": "Cold list"}, {"Visits": 0}), config, NOW).score == 0  # capped at 0
    assert score_lead(LeadInput(4, {}, {"Visits": "n/a"}), config, NOW).explanation() == ["no engagement recorded"]


def test_recency_halves_per_half_life_for_data_and_activity() -> None:
    recency = {
        "dataHalfLifeDays": 100,
        "activityField": "custom.Last Activity",
        "activityHalfLifeDays": 10,
        "activityShare": 0.5,
    }
    config = _only("recency", recency=recency)
    lead = LeadInput(
        1,
        {},
        custom={"Last Activity": (NOW - timedelta(days=10)).isoformat()},
        data_updated_at=NOW - timedelta(days=100),
    )
    assert score_lead(lead, config, NOW).score == 50  # 0.5 x 0.5 + 0.5 x 0.5
    fresh = LeadInput(2, {}, custom={"Last Activity": NOW.date().isoformat()}, data_updated_at=NOW)
    assert score_lead(fresh, config, NOW).score == 100
    assert score_lead(fresh, config, NOW + timedelta(days=200)).score < 30


def test_components_always_sum_to_the_score() -> None:
    config = parse_config({})
    lead = LeadInput(
        1,
        {"email": "x@y.io", "title": "Director of Sales", "industry": "Internet", "employee_count": 70},
        custom={"Visits": 4},
        data_updated_at=NOW - timedelta(days=33),
    )
    result = score_lead(lead, config, NOW)
    assert sum(result.components.values()) == result.score
    assert 0 < result.score < 100


@pytest.mark.parametrize(
    "raw",
    [{"a": 33.4, "b": 33.3, "c": 33.3}, {"a": 0.5, "b": 0.5}, {"a": 12.49, "b": 7.51, "c": 0.0}, {"a": 99.9}],
)
def test_whole_points_add_up(raw: dict[str, float]) -> None:
    score, components = whole_points(raw)
    assert score == round(sum(raw.values()))
    assert sum(components.values()) == score


def test_the_point_left_by_rounding_goes_to_the_largest_remainder_and_the_score_stops_at_100() -> None:
    assert whole_points({"a": 12.49, "b": 7.51, "c": 0.0}) == (20, {"a": 12, "b": 8, "c": 0})
    assert whole_points({"a": 0.3, "b": 1.6, "c": 0.7}) == (3, {"a": 0, "b": 2, "c": 1})
    assert whole_points({"a": 60.4, "b": 40.4}) == (100, {"a": 60, "b": 40})


def test_fields_only_counted_as_filled_are_told_apart_from_those_whose_value_counts() -> None:
    """A reader may give True/None for a field completeness only counts (``presence_only``), never for one a rule
    reads the value of: the title matched against the ICP's titles, a signal's field, the activity field."""
    config = parse_config(
        {
            "completeness": {"fields": {"email": 1, "title": 1, "custom.Visits": 1, "phone": 1}},
            "companyFit": {"titles": ["vp"]},
            "engagement": {"signals": [{"field": "custom.Visits", "steps": [{"min": 1, "points": 5}]}]},
            "recency": {"activityField": "custom.Last Activity"},
        }
    )
    rules = Rules(config, also=["notes"])
    assert rules.presence_only == {"email", "phone"}
    assert set(rules.fields) == {"email", "title", "custom.Visits", "phone", "custom.Last Activity", "notes"}


def test_bands_follow_the_thresholds_unless_set() -> None:
    config = _only("dataCompleteness", completeness={"fields": {"email": 1, "phone": 1}}, thresholds={"mql": 40})
    assert score_lead(LeadInput(1, {"email": "a@b.co"}), config, NOW).band == "warm"
    assert score_lead(LeadInput(1, {"email": "a@b.co", "phone": "+1"}), config, NOW).band == "hot"
    assert score_lead(LeadInput(1, {}), config, NOW).band == "cold"
    banded = _only("dataCompleteness", completeness={"fields": {"email": 1, "phone": 1}}, bands={"warm": 60})
    assert score_lead(LeadInput(1, {"email": "a@b.co"}), banded, NOW).band == "cold"


def test_fit_model_as_component_or_replacement() -> None:
    component = parse_config(
        {
            "weights": {"dataCompleteness": 0, "companyFit": 0, "engagement": 0, "recency": 0},
            "model": {"mode": "component", "weight": 10},
        }
    )
    result = score_lead(LeadInput(1, {}), component, NOW, fit_probability=0.42)
    assert result.components["fitModel"] == 42 and result.score == 42
    with pytest.raises(ValueError, match="uses the fit model as a component, but no probability"):
        score_lead(LeadInput(1, {}), component, NOW)
    replace = parse_config({"model": {"mode": "replace"}})
    assert score_lead(LeadInput(1, {}), replace, NOW, fit_probability=0.9).components == {"fitModel": 90}
    with pytest.raises(ValueError, match="no probability"):
        score_lead(LeadInput(1, {}), replace, NOW)


def test_explanation_gives_the_strongest_reasons_first_then_what_was_missed() -> None:
    reasons = (
        Reason("engagement", 0.0, "no engagement recorded"),
        Reason("companyFit", 4.0, "industry Internet in the ICP"),
        Reason("dataCompleteness", 1.0, "2 of 11 key fields filled"),
        Reason("companyFit", 12.0, "title has 'vp'"),
    )
    result = ScoreResult(17, {}, "cold", reasons)
    assert result.explanation(2) == ["title has 'vp' (+12)", "industry Internet in the ICP (+4)"]
    assert result.explanation() == [
        "title has 'vp' (+12)",
        "industry Internet in the ICP (+4)",
        "2 of 11 key fields filled (+1)",
    ]
    assert result.explanation(5) == [
        "title has 'vp' (+12)",
        "industry Internet in the ICP (+4)",
        "2 of 11 key fields filled (+1)",
        "no engagement recorded",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, (20.0, "Visits 12")),
        (10, (20.0, "Visits 10")),  # a step's minimum reaches it
        (1, (5.0, "Visits 1")),
        ("1,200", (20.0, "Visits 1,200")),
        (2_500_000, (20.0, "Visits 2,500,000")),  # not 2.5e+06
        (3.0, (5.0, "Visits 3")),
        (0, (-1.0, "Visits 0")),  # below every step: the default
        (None, (-3.0, "Visits unknown")),
        ("n/a", (-3.0, "Visits unknown")),
        ("nan", (-3.0, "Visits unknown")),
        (float("nan"), (-3.0, "Visits unknown")),
        (True, (-3.0, "Visits unknown")),  # a yes/no is no count
    ],
)
def test_a_stepped_signal_scores_numbers_and_gives_missing_points_to_anything_else(
    value: Any, expected: tuple[float, str]
) -> None:
    steps = [{"min": 1, "points": 5}, {"min": 10, "points": 20}]
    signal = Signal.model_validate({"field": "custom.Visits", "steps": steps, "default": -1, "missing": -3})
    assert signal_points(signal, value) == expected


def test_an_empty_field_scores_nothing_unless_missing_points_are_set() -> None:
    counted = Signal.model_validate({"field": "source", "values": {"Referral": 30}, "missing": -5})
    assert signal_points(counted, None) == (-5.0, "source unknown")
    assert signal_points(counted, "referral") == (30.0, "source referral")
    plain = Signal.model_validate({"field": "source", "values": {"Referral": 30}})
    assert signal_points(plain, None) is None
    assert signal_points(plain, "web") == (0.0, "source web")


def test_a_size_outside_every_icp_range_does_not_match() -> None:
    config = _only("companyFit", companyFit={"employees": [{"min": 50, "max": 500}, {"min": 5000}]})
    assert score_lead(LeadInput(1, {"employee_count": 5000}), config, NOW).score == 100
    outside = score_lead(LeadInput(2, {"employee_count": 20}), config, NOW)
    assert outside.score == 0
    assert outside.explanation() == ["outside the ICP on employees"]


@pytest.mark.parametrize(
    ("last_activity", "score", "day"),
    [
        (datetime(2026, 11, 18, 22), 53, "2026-11-18"),  # no time zone: UTC; 9.08 days at a half-life of 10
        (datetime(2026, 11, 18, 22, tzinfo=UTC), 53, "2026-11-18"),
        (datetime(2026, 11, 19, 8, tzinfo=timezone(timedelta(hours=10))), 53, "2026-11-18"),
        ("2026-11-18T22:00:00Z", 53, "2026-11-18"),
        (" 2026-11-19T08:00:00+10:00 ", 53, "2026-11-18"),
        (date(2026, 11, 18), 50, "2026-11-18"),  # a day: its start, 10 days
        ("2026-11-18", 50, "2026-11-18"),
    ],
)
def test_the_last_activity_is_read_from_dates_datetimes_and_iso_text(last_activity: Any, score: int, day: str) -> None:
    recency = {"activityField": "custom.Last Activity", "activityHalfLifeDays": 10, "activityShare": 1}
    config = _only("recency", recency=recency)
    result = score_lead(LeadInput(1, {}, custom={"Last Activity": last_activity}), config, NOW)
    assert result.explanation() == [f"last activity {day} (+{score})"]
    assert result.score == score


@pytest.mark.parametrize("last_activity", [None, "", "  ", "last week", 20261118])
def test_no_readable_last_activity_scores_no_activity(last_activity: Any) -> None:
    recency = {"activityField": "custom.Last Activity", "activityShare": 1}
    config = _only("recency", recency=recency)
    result = score_lead(LeadInput(1, {}, custom={"Last Activity": last_activity}), config, NOW)
    assert (result.score, result.explanation()) == (0, ["no recent activity recorded"])
