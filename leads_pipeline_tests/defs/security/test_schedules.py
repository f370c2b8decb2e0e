"""The daily retention schedule targets the retention job, which materializes ``retention_run``."""

from __future__ import annotations

import dagster as dg

from leads_pipeline.definitions import defs


def test_retention_runs_daily_by_default() -> None:
    schedule = defs.resolve_schedule_def("retention_daily")
    assert schedule.cron_schedule == "0 3 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "retention_job"
    job = defs.resolve_job_def("retention_job")
    assert {node.name for node in job.graph.node_defs} == {"retention_run"}
