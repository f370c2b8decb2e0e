"""The project's Dagster instance (dagster.yaml) as `leads dev`'s daemon runs it."""

import logging
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
from dagster._daemon.monitoring import run_monitoring

from leads_pipeline_tests.support import cli_environment


def test_a_run_left_canceling_is_reported_canceled_by_the_daemon(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run terminated from the UI just as one of its step processes ended stayed CANCELING for good: the process
    left Dagster's termination event locked and the executor waited on it. The run, and the backfill it belonged
    to, read canceling, and it held one of the run queue's slots. The daemon now monitors runs and reports one
    still canceling after cancel_timeout_seconds canceled (and its enrichment job reads interrupted)."""
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    with dg.DagsterInstance.get() as instance:
        assert "MONITORING" in instance.get_required_daemon_types()
        timeout = instance.run_monitoring_cancel_timeout_seconds
        assert 0 < timeout <= 300
        run = instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED))
        instance.report_run_canceling(run)
        [record] = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))
        later = time.time() + timeout + 1
        monkeypatch.setattr(run_monitoring, "time", SimpleNamespace(time=lambda: later))
        run_monitoring.monitor_canceling_run(instance, record, logging.getLogger(__name__))
        canceled = instance.get_run_by_id(run.run_id)
        assert canceled is not None and canceled.status == dg.DagsterRunStatus.CANCELED
