"""Retention runs daily at 03:00 UTC, when nobody imports; running by default so policies are applied without
anyone having to switch the schedule on in the UI."""

import dagster as dg

from leads_pipeline.defs.security.jobs import retention_job

retention_schedule = dg.ScheduleDefinition(
    name="retention_daily",
    job=retention_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
