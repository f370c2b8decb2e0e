"""The daily rescore: scores decay with the age of the data and of the last activity, so scored leads are scored
again every day, each under the configuration it was last scored with.

Evaluating the schedule (the UI's "test", ``dagster schedule preview``) writes no batch: each run makes its batch
as it starts (``lead_scores``, told by the run's ``leads/rescore_config`` tag). It does register the runs'
partition keys with Dagster, because a schedule's result cannot ask for new partitions the way a sensor's can and a
run needs its partition to exist; a key is the day and the configuration, so a dry run registers at most the keys
that day's runs use.
"""

from datetime import datetime

import dagster as dg

from leads_pipeline.defs.executor import BACKGROUND_PRIORITY
from leads_pipeline.defs.partitions import BATCHES, batches
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.defs.scoring.assets import RESCORE_CONFIG_TAG, lead_scores
from leads_pipeline.lib.store.scoring import Connection

rescore_job = dg.define_asset_job(
    "rescore_leads",
    selection=[lead_scores],
    partitions_def=batches,
    description="Scores a batch of leads again (the daily rescore's runs, one per scoring configuration in use).",
)


def rescore_batch_key(day: datetime, config_version: str) -> str:
    return f"rescore-{day:%Y%m%d}-{config_version}"


def rescore_requests(conn: Connection, moment: datetime) -> list[dg.RunRequest]:
    """One run per configuration in use (its scored, live leads become the batch), keyed by the day: a tick
    evaluated again asks for the same runs, which the daemon does not launch twice."""
    groups = conn.execute(
        "SELECT c.version AS config_version, c.config FROM scoring_configs c WHERE EXISTS (SELECT 1"
        " FROM lead_scores s JOIN leads l ON l.id = s.lead_id"
        " WHERE s.config_version = c.version AND l.deleted_at IS NULL) ORDER BY c.version"
    ).fetchall()
    return [
        dg.RunRequest(
            run_key=rescore_batch_key(moment, group["config_version"]),
            partition_key=rescore_batch_key(moment, group["config_version"]),
            run_config={"ops": {"lead_scores": {"config": {**group["config"], "as_of": moment.isoformat()}}}},
            tags={"leads/source": "daily_rescore", RESCORE_CONFIG_TAG: group["config_version"], **BACKGROUND_PRIORITY},
        )
        for group in groups
    ]


@dg.schedule(
    job=rescore_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,  # the decay the README promises happens without a click
    description="Rescores every scored lead at 03:00 UTC each day, one batch per scoring configuration in use.",
)
def daily_rescore(
    context: dg.ScheduleEvaluationContext, database: LeadsDatabase
) -> dg.SkipReason | list[dg.RunRequest]:
    """Registers the partitions of the tick's runs (idempotent) and asks for the runs."""
    with database.connection() as conn:
        requests = rescore_requests(conn, context.scheduled_execution_time)
    if not requests:
        return dg.SkipReason("no scored leads to rescore")
    context.instance.add_dynamic_partitions(BATCHES, [r.partition_key for r in requests if r.partition_key])
    return requests
