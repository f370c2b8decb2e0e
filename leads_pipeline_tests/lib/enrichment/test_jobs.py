"""Job helpers: ids files, the monthly budget setting, and the ETA."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from leads_pipeline.lib.enrichment.jobs import MonthBudget, eta_seconds, monthly_budget
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store.enrichment import Job

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
JOB = Job(
    id="j",
    sources=("company",),
    template="standard",
    overwrite=False,
    priority="normal",
    max_credits=None,
    estimated_credits=10,
    estimated_seconds=120,
    leads_queued=100,
    notify_url=None,
    status="processing",
    created_by="t",
    created_at=NOW,
    started_at=None,
    completed_at=None,
    failure=None,
    estimate={},
)


def test_eta_uses_the_estimate_until_leads_are_done_then_the_observed_rate() -> None:
    assert eta_seconds(JOB, 0, 100, NOW) == 120
    started = replace(JOB, started_at=NOW - timedelta(seconds=30))
    assert eta_seconds(started, 0, 100, NOW) == 90
    assert eta_seconds(started, 25, 100, NOW) == 90  # 25 leads in 30 s: 75 more take 90 s
    assert eta_seconds(replace(JOB, started_at=NOW - timedelta(seconds=500)), 0, 100, NOW) == 0


def test_monthly_budget_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADS_MONTHLY_CREDITS", raising=False)
    assert monthly_budget() is None
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "250")
    assert monthly_budget() == 250
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "lots")
    with pytest.raises(ConfigurationError, match="LEADS_MONTHLY_CREDITS='lots' is not a number"):
        monthly_budget()


def test_the_credits_that_fit_the_month_are_whole_calls_at_their_price() -> None:
    """With 0.5 credit left, the estimate said "~0.5 of the job's credits fit", yet no 1-credit Gemini research fits
    in 0.5 (a paid call is made only when its whole price fits) and the run spent nothing."""
    gemini, search = (1.0, 3), (0.5, 2)
    assert MonthBudget(10, 9.5, 3, (gemini,)).fit == 0
    assert MonthBudget(10, 9.5, 4, (gemini, search)).fit == 0.5  # a cheaper call still fits what a dearer could not
    assert MonthBudget(10, 7.7, 4, (gemini, search)).fit == 2  # 2.3 left: two researches; 0.3 buys no search
    assert MonthBudget(10, 0, 4, (gemini, search)).fit == 4  # all fit
    assert MonthBudget(10, 0, 3.5, (gemini, search)).fit == 3.5  # never more than the estimate (the per-lead ceiling)
    assert "~0 of the job's ~3 credits fit" in MonthBudget(10, 9.5, 3, (gemini,)).as_json()["note"]
    assert "budget of 1 credit is used up" in MonthBudget(1, 1, 3, (gemini,)).refusal
