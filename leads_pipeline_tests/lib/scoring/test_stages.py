"""Stage progression: up automatically, down only when configured, never below a person's choice."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.scoring.config import parse_config
from leads_pipeline.lib.scoring.stages import check_manual_stage, next_stage

CONFIG = parse_config({"thresholds": {"mql": 50, "sql": 75}})
REGRESSING = parse_config({"thresholds": {"mql": 50, "sql": 75}, "stages": {"regression": True}})


@pytest.mark.parametrize(
    ("current", "source", "score", "expected"),
    [
        ("new", "auto", 49, "new"),
        ("new", "auto", 50, "mql"),
        ("new", "auto", 80, "sql"),
        ("mql", "auto", 75, "sql"),
        ("sql", "auto", 10, "sql"),  # no regression by default
        ("mql", "manual", 90, "sql"),  # crossing a threshold still promotes
        ("customer", "manual", 99, "customer"),  # off the ladder: untouched
        ("disqualified", "manual", 99, "disqualified"),
    ],
)
def test_progression(current: str, source: str, score: int, expected: str) -> None:
    assert next_stage(current, source, score, CONFIG) == expected  # type: ignore[arg-type]


def test_regression_only_when_configured_and_never_below_a_manual_stage() -> None:
    assert next_stage("sql", "auto", 60, REGRESSING) == "mql"
    assert next_stage("sql", "auto", 10, REGRESSING) == "new"
    assert next_stage("sql", "manual", 10, REGRESSING) == "sql"


def test_manual_stage_names() -> None:
    assert check_manual_stage(" MQL ") == "mql"
    with pytest.raises(ConfigurationError, match="unknown stage 'won'"):
        check_manual_stage("won")
