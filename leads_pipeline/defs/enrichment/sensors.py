"""Enrichment sensors: enrich after an import (per-list setting) and settle + notify when an enrichment run ends."""

import dagster as dg

from leads_pipeline.defs.enrichment.jobs import (
    ENRICHMENT_JOB,
    JOB_TAG,
    finish_run,
    launchable_sources,
    run_config,
    run_tags,
)
from leads_pipeline.defs.killed import WILL_RETRY_TAG
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.enrichment.jobs import estimate, launch_refusal
from leads_pipeline.lib.enrichment.providers import SOURCE_ASSETS
from leads_pipeline.lib.enrichment.templates import load_template
from leads_pipeline.lib.errors import LeadsError
from leads_pipeline.lib.store import enrichment as store


@dg.sensor(
    job_name=ENRICHMENT_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Enriches each completed import whose list has enrichAfterImport on (leads enrich-after-import).",
)
def enrich_after_import_sensor(context: dg.SensorEvaluationContext, database: LeadsDatabase) -> dg.SensorResult:
    available = {key.to_user_string() for key in context.repository_def.asset_graph.get_all_asset_keys()}  # type: ignore[union-attr]
    requests: list[dg.RunRequest] = []
    refused: list[str] = []
    with database.connection() as conn:
        for row in store.imports_to_enrich(conn):
            try:
                job = store.find_job(conn, row["batch_id"])  # queued by an earlier evaluation: asked for again
                if job is None:
                    template = load_template(row["template"])
                    sources = list(row["sources"])
                    plan = estimate(conn, row["batch_id"], sources, template, overwrite=False)
                    job = store.create_job(
                        conn,
                        row["batch_id"],
                        sources=sources,
                        template=row["template"],
                        overwrite=False,
                        priority=row["priority"],
                        max_credits=None if row["max_credits"] is None else float(row["max_credits"]),
                        estimate=plan,
                        leads_queued=plan["leads"],
                        notify_url=row["notify_url"],
                        created_by=row["created_by"],
                    )
                    refusal = launch_refusal(conn, plan)
                    if refusal is not None:  # `leads jobs ls/show` say why it did not run; the import is handled
                        store.refuse_job(conn, job.id, refusal)
                        refused.append(f"import {row['import_id']}: job {job.id} not launched: {refusal}")
                        context.log.warning(refused[-1])
                        continue
                keys = launchable_sources(job, available)
            except LeadsError as exc:
                context.log.warning(f"import {row['import_id']}: not enriched after import: {exc}")
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"enrich-{job.id}",
                    partition_key=job.id,
                    asset_selection=[dg.AssetKey(key) for key in keys],
                    run_config=run_config(job, keys),
                    tags=run_tags(job, "enrich_after_import"),
                )
            )
    # a tick that launches nothing says why in the UI (a tick cannot both launch runs and skip: the log says it)
    return dg.SensorResult(run_requests=requests, skip_reason=None if requests else "; ".join(refused) or None)


def _job_of(run: dg.DagsterRun) -> str | None:
    """The enrichment job a run worked for: its tag (CLI, sensor), else its partition when the run materialized an
    enrichment asset (a launch from the UI)."""
    if JOB_TAG in run.tags:
        return run.tags[JOB_TAG]
    enrichment_keys = {dg.AssetKey(key) for key in SOURCE_ASSETS.values()}
    if run.job_name == ENRICHMENT_JOB or (run.asset_selection and run.asset_selection & enrichment_keys):
        return run.tags.get("dagster/partition")
    return None


def _settle(context: dg.RunStatusSensorContext, database: LeadsDatabase, *, success: bool) -> None:
    job_id = _job_of(context.dagster_run)
    if not job_id:
        return
    if not success and context.dagster_run.tags.get(WILL_RETRY_TAG) == "true":
        # Dagster runs it again (its worker died): settling now would post "failed" for a job its retry finishes
        context.log.info(f"enrichment job {job_id}: run {context.dagster_run.run_id} failed and is retried")
        return
    with database.connection() as conn:
        if store.find_job(conn, job_id) is None:
            return
    failure = None
    if not success and context.dagster_event is not None:
        failure = context.dagster_event.message or "the enrichment run failed"
    try:
        finish_run(database.database_url, job_id, context.dagster_run.run_id, success=success, failure=failure)
    except LeadsError as exc:  # settling or notifying must never fail the job, nor the sensor
        context.log.warning(f"could not settle enrichment job {job_id}: {exc}")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks an enrichment job done when its run succeeds and POSTs its summary to the webhook.",
)
def enrichment_succeeded_sensor(context: dg.RunStatusSensorContext, database: LeadsDatabase) -> None:
    _settle(context, database, success=True)


IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
"""The statuses of a run that is still to work on its job."""


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.CANCELED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks interrupted (`leads jobs resume` goes on with it) the enrichment job of a run terminated from"
    " the UI or canceled with its backfill.",
)
def enrichment_canceled_sensor(context: dg.RunStatusSensorContext, database: LeadsDatabase) -> None:
    """A canceled run settles nothing (``enrichment_failed_sensor`` sees failures only): its job read ``processing``
    for good and ``leads jobs resume`` refused it as still running. It now reads interrupted, unless another run
    of the job (a second backfill's, a relaunch) is still to work on it: that run's end settles it."""
    job_id = _job_of(context.dagster_run)
    if not job_id:
        return
    runs = context.instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS, tags={"dagster/partition": job_id}))
    if any(_job_of(run) == job_id for run in runs if run.run_id != context.dagster_run.run_id):
        return
    with database.connection() as conn:
        if store.hand_over_to_resume(conn, job_id):
            context.log.info(
                f"enrichment job {job_id}: its run {context.dagster_run.run_id} was canceled; it reads interrupted,"
                f" `leads jobs resume {job_id}` goes on with it"
            )


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks an enrichment job failed or partial when its run fails and POSTs its summary to the webhook.",
)
def enrichment_failed_sensor(context: dg.RunFailureSensorContext, database: LeadsDatabase) -> None:
    _settle(context, database, success=False)
