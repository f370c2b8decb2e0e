"""Retention runs daily at 03:00 UTC, when nobody imports; CRM erasures hourly. Both run by default, so that
policies and erasure requests are applied without anyone having to switch a schedule on in the UI (a day without a
policy, an hour without a pending erasure, launches no run). Their runs rank behind the runs people launch
(``BACKGROUND_PRIORITY``), as the other runs the daemon requests by itself."""

import dagster as dg

from leads_pipeline.defs.executor import BACKGROUND_PRIORITY
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.defs.security.jobs import crm_erasures_job, database_backup_job, retention_job
from leads_pipeline.lib.store import crm_erasures as erasure_queue
from leads_pipeline.lib.store import retention


@dg.schedule(
    name="retention_daily",
    job=retention_job,
    description="Applies the retention policies at 03:00 UTC each day.",
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def retention_schedule(context: dg.ScheduleEvaluationContext, database: LeadsDatabase) -> dg.SkipReason | dg.RunRequest:
    """A day with no policy set launches no run: each day's run removed nothing and wrote an entry to the audit
    log, which nothing may delete (a year: 365 runs and entries saying "0 removed")."""
    with database.connection() as conn:
        policies = retention.policies(conn)
    if not policies:
        return dg.SkipReason("no retention policy is set (leads retention set)")
    return dg.RunRequest(tags=BACKGROUND_PRIORITY)


@dg.schedule(
    name="crm_erasures_hourly",
    job=crm_erasures_job,
    description="Sends the deletions owed to CRMs at 20 minutes past each hour; failed ones are tried again.",
    cron_schedule="20 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def crm_erasures_schedule(
    context: dg.ScheduleEvaluationContext, database: LeadsDatabase
) -> dg.SkipReason | dg.RunRequest:
    """Deletions owed to CRMs go out within the hour of an erasure request, and transient failures are retried.
    An hour with nothing pending launches no run: every hour's run of an empty queue (8,760 a year, each a process
    loading the code, a materialization and its events in Dagster's storage) buried the runs people launch."""
    with database.connection() as conn:
        pending = len(erasure_queue.pending_ids(conn))
    if not pending:
        return dg.SkipReason("no CRM erasure is pending")
    return dg.RunRequest(tags=BACKGROUND_PRIORITY)


database_backup_schedule = dg.ScheduleDefinition(
    name="database_backup_daily",
    job=database_backup_job,
    description=(
        "Backs the database up at 02:00 UTC each day, keeping the newest seven (off until switched on: each backup"
        " is a file about a third of the database's size)."
    ),
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    tags=BACKGROUND_PRIORITY,
)
