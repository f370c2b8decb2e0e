"""Job helpers: ids files, the monthly budget setting, and the ETA."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from leads_pipeline.lib.enrichment.jobs import eta_seconds, monthly_budget
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
