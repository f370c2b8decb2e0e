"""The daily rescore: scores decay with the age of the data and of the last activity, so scored leads are scored
again every day, each under the configuration it was last scored with."""

from datetime import datetime

import dagster as dg

from leads_pipeline.defs.partitions import BATCHES, batches
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.defs.scoring.assets import lead_scores
from leads_pipeline.lib.store.scoring import create_rescore_batch

rescore_job = dg.define_asset_job("rescore_leads", selection=[lead_scores], partitions_def=batches)


def rescore_batch_key(day: datetime, config_version: str) -> str:
    return f"rescore-{day:%Y%m%d}-{config_version}"


@dg.schedule(
    job=rescore_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,  # the decay the README promises happens without a click
)
def daily_rescore(
    context: dg.ScheduleEvaluationContext, database: LeadsDatabase
) -> dg.SkipReason | list[dg.RunRequest]:
    """One selection batch per configuration in use (its scored, live leads), created once per day: a re-evaluated
    tick finds the same batches and the same run keys, so nothing is scored twice."""
    moment = context.scheduled_execution_time
    with database.connection() as conn:
        groups = conn.execute(
            "SELECT c.version AS config_version, c.config FROM scoring_configs c WHERE EXISTS (SELECT 1"
            " FROM lead_scores s JOIN leads l ON l.id = s.lead_id"
            " WHERE s.config_version = c.version AND l.deleted_at IS NULL) ORDER BY c.version"
        ).fetchall()
        requests = []
        for group in groups:
            key = rescore_batch_key(moment, group["config_version"])
            create_rescore_batch(conn, key, group["config_version"])
            requests.append(
                dg.RunRequest(
                    run_key=key,
                    partition_key=key,
                    run_config={"ops": {"lead_scores": {"config": {**group["config"], "as_of": moment.isoformat()}}}},
                    tags={"leads/source": "daily_rescore"},
                )
            )
    if not requests:
        return dg.SkipReason("no scored leads to rescore")
    # Schedules cannot request new dynamic partitions the way sensors do; adding them here is idempotent.
    known = set(context.instance.get_dynamic_partitions(BATCHES))
    new = [r.partition_key for r in requests if r.partition_key and r.partition_key not in known]
    if new:
        context.instance.add_dynamic_partitions(BATCHES, new)
    return requests
