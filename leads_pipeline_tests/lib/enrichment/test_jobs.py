"""Job helpers: ids files, the monthly budget setting, and the ETA."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leads_pipeline.lib.enrichment.jobs import eta_seconds, monthly_budget, read_ids_file
from leads_pipeline.lib.errors import ConfigurationError, InputFileError
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


def test_ids_files(tmp_path: Path) -> None:
    plain = tmp_path / "ids.txt"
    plain.write_text("3\n1\n\n2\n")
    assert read_ids_file(plain) == [3, 1, 2]
    export = tmp_path / "export.csv"
    export.write_text('email,id\n"a@x.io",7\nb@x.io,8\n')
    assert read_ids_file(export) == [7, 8]
    bad = tmp_path / "bad.txt"
    bad.write_text("1\n2.5\n")
    with pytest.raises(InputFileError, match=r"bad.txt: line 2: expected a lead id \(a whole number\), found '2.5'"):
        read_ids_file(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(InputFileError, match="no lead ids"):
        read_ids_file(empty)


def test_monthly_budget_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADS_MONTHLY_CREDITS", raising=False)
    assert monthly_budget() is None
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "250")
    assert monthly_budget() == 250
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "lots")
    with pytest.raises(ConfigurationError, match="LEADS_MONTHLY_CREDITS='lots' is not a number"):
        monthly_budget()
