"""The daily retention schedule targets the retention job, which materializes ``retention_run``."""

from __future__ import annotations

import dagster as dg
import pytest

from leads_pipeline.definitions import defs
from leads_pipeline.defs.executor import BACKGROUND_PRIORITY


def test_retention_runs_daily_by_default() -> None:
    schedule = defs.resolve_schedule_def("retention_daily")
    assert schedule.cron_schedule == "0 3 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "retention_job"
    job = defs.resolve_job_def("retention_job")
    assert {node.name for node in job.graph.node_defs} == {"retention_run"}


@pytest.mark.parametrize("name", ["crm_erasures_hourly", "retention_daily"])
def test_the_schedules_runs_queue_behind_the_runs_people_launch(name: str) -> None:
    """Without ``dagster/priority`` the daemon's own runs ranked as a run launched from the UI or by ``leads``."""
    schedule = defs.resolve_schedule_def(name)
    [request] = schedule.evaluate_tick(dg.build_schedule_context()).run_requests or []
    assert request.tags["dagster/priority"] == BACKGROUND_PRIORITY["dagster/priority"] == "-10"
