"""The daily rescore: scores decay with the age of the data and of the last activity, so scored leads are scored
again every day, each under the configuration it was last scored with.

A sensor that fires once a day at 03:00 UTC, not a schedule: its runs need new batch partitions, which a sensor
requests in its result and a schedule cannot, so the schedule added them, and created the batches, while it was
evaluated, and a dry run (the UI's "test", ``dagster schedule preview``) wrote both. Evaluating the sensor writes
nothing: the daemon adds the partitions it requests, and each run creates its batch as it starts (``lead_scores``,
told by the run's ``leads/rescore_config`` tag)."""

from datetime import UTC, datetime, time, timedelta

import dagster as dg

from leads_pipeline.defs.partitions import batches
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.defs.scoring.assets import RESCORE_CONFIG_TAG, lead_scores
from leads_pipeline.lib.store.scoring import Connection

rescore_job = dg.define_asset_job("rescore_leads", selection=[lead_scores], partitions_def=batches)
RESCORE_AT = time(3, tzinfo=UTC)


def rescore_batch_key(day: datetime, config_version: str) -> str:
    return f"rescore-{day:%Y%m%d}-{config_version}"


def due_tick(now: datetime) -> datetime:
    """The latest 03:00 UTC at or before ``now``: the tick a daily ``0 3 * * *`` schedule last fired at."""
    tick = datetime.combine(now.astimezone(UTC).date(), RESCORE_AT)
    return tick if tick <= now else tick - timedelta(days=1)


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
            tags={"leads/source": "daily_rescore", RESCORE_CONFIG_TAG: group["config_version"]},
        )
        for group in groups
    ]


@dg.sensor(
    job=rescore_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,  # the decay the README promises happens without a click
    description="Rescores every scored lead at 03:00 UTC each day, one batch per scoring configuration in use.",
)
def daily_rescore(context: dg.SensorEvaluationContext, database: LeadsDatabase) -> dg.SensorResult:
    """The runs of the last 03:00 UTC once it has passed since the tick in the cursor. Like a schedule switched
    on, the first evaluation only remembers the last tick: the first rescore is at the next 03:00."""
    tick = due_tick(datetime.now(UTC))
    last = datetime.fromisoformat(context.cursor) if context.cursor else None
    if last is None or tick <= last:
        return dg.SensorResult(skip_reason=f"the next rescore is at {tick + timedelta(days=1):%Y-%m-%d %H:%M} UTC",
                               cursor=(last or tick).isoformat())  # fmt: skip
    with database.connection() as conn:
        requests = rescore_requests(conn, tick)
    if not requests:
        return dg.SensorResult(skip_reason="no scored leads to rescore", cursor=tick.isoformat())
    keys = [request.partition_key for request in requests if request.partition_key]
    return dg.SensorResult(
        run_requests=requests, dynamic_partitions_requests=[batches.build_add_request(keys)], cursor=tick.isoformat()
    )
