"""Retention runs daily at 03:00 UTC, when nobody imports; CRM erasures hourly. Both run by default, so that
policies and erasure requests are applied without anyone having to switch a schedule on in the UI. Their runs
rank behind the runs people launch (``BACKGROUND_PRIORITY``), as the other runs the daemon requests by itself."""

import dagster as dg

from leads_pipeline.defs.executor import BACKGROUND_PRIORITY
from leads_pipeline.defs.security.jobs import crm_erasures_job, retention_job

retention_schedule = dg.ScheduleDefinition(
    name="retention_daily",
    job=retention_job,
    description="Applies the retention policies at 03:00 UTC each day.",
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags=BACKGROUND_PRIORITY,
)

crm_erasures_schedule = dg.ScheduleDefinition(
    name="crm_erasures_hourly",
    job=crm_erasures_job,
    description="Sends the deletions owed to CRMs at 20 minutes past each hour; failed ones are tried again.",
    cron_schedule="20 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags=BACKGROUND_PRIORITY,
)
"""Deletions owed to CRMs go out within the hour of an erasure request, and transient failures are retried."""
