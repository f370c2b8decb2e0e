"""Launching an enrichment job through Dagster, and settling it when its run ends.

A job is a batch partition; its sources are assets (``email_contacts``, ``phone_contacts``,
``linkedin_profiles``, ``company_profiles``) run for that partition in one run tagged with the job id and its
priority (``dagster/priority``: the run queue starts high-priority runs first). The CLI runs it in-process
(orchestration through the daemon costs ~8-10 s per run); sensors and the UI go through the run queue. Either way
``finish_run`` settles the job from what its sources reported and sends the completion webhook.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import dagster as dg

from leads_pipeline.defs.executor import failed_step_error, materialize_here
from leads_pipeline.defs.killed import end_killed_runs
from leads_pipeline.defs.partitions import BATCHES, batches
from leads_pipeline.lib.enrichment.jobs import PRIORITIES
from leads_pipeline.lib.enrichment.notify import notify_completion
from leads_pipeline.lib.enrichment.providers import SOURCE_ASSETS, require_assets
from leads_pipeline.lib.errors import PermanentError
from leads_pipeline.lib.store import enrichment as store
from leads_pipeline.lib.store import liveness
from leads_pipeline.lib.store.db import connect

ENRICHMENT_JOB = "enrichment"
JOB_TAG = "leads/job"


def enrichment_job(asset_keys: Iterable[str]) -> dg.UnresolvedAssetJobDefinition:
    """The partitioned job over whichever enrichment assets the Definitions hold (contact assets join when
    deployed); runs narrow it to a job's sources with an asset selection."""
    deployed = set(asset_keys)
    present = [key for key in SOURCE_ASSETS.values() if key in deployed]
    return dg.define_asset_job(
        ENRICHMENT_JOB,
        selection=dg.AssetSelection.assets(*present),
        partitions_def=batches,
        description="Enrich a batch of leads with the sources of its enrichment job.",
    )


def run_tags(job: store.Job, origin: str) -> dict[str, str]:
    return {
        JOB_TAG: job.id,
        "dagster/priority": str(PRIORITIES[job.priority]),
        "leads/priority": job.priority,
        "leads/source": origin,
    }


def run_config(job: store.Job, asset_keys: Iterable[str]) -> dict[str, Any]:
    """Each source asset's config: ``overwrite`` for all (the contact assets' Config has it too)."""
    return {"ops": {key: {"config": {"overwrite": job.overwrite}} for key in asset_keys}}


def launchable_sources(job: store.Job, available: set[str]) -> list[str]:
    """The job's asset keys; a source whose asset is not deployed is an error naming it."""
    return require_assets(list(job.sources), available)


def finish_run(database_url: str, job_id: str, run_id: str, *, success: bool, failure: str | None = None) -> store.Job:
    """Settle the job after its run: sources still open become completed (or failed), then notify once."""
    with connect(database_url) as conn:
        for row in store.progress_rows(conn, job_id):
            if row["status"] in ("queued", "processing"):
                store.finish_source(conn, job_id, row["source"], "completed" if success else "failed", failure)
        job = store.settle_job(conn, job_id, None if success else (failure or "the enrichment run failed"))
    notify_completion(database_url, job_id, run_id)
    return job


def materialize_job(
    database_url: str,
    job: store.Job,
    *,
    instance: dg.DagsterInstance | None = None,
    resources: dict[str, Any] | None = None,
    claimed: bool = False,
    log_level: str = "CRITICAL",
) -> store.Job:
    """Run the job's source assets in-process on the project's instance and settle it; returns the settled job.
    Dagster's console log says what is at ``log_level`` or above: nothing but a crash by default, as the job's
    summary says why a source failed (a failed step's stack trace, and an interrupted one's, filled the screen of
    `leads demo` and `leads enrich --wait`); the background `leads jobs run` logs errors to the job's log file.

    The job's lock (``liveness.ENRICHMENT_JOB``) is held from before its sources start until it is settled (by the
    caller, ``claimed``, from before it launched the job: ``store.claim_job``): a process killed in between
    (SIGKILL, Ctrl-C on ``--wait``) drops it with its session, and the job, still processing, reads as interrupted
    (``leads jobs resume`` goes on with it). A job whose lock another process holds is still running there and is
    not run a second time."""
    if claimed:
        return _materialize_claimed(database_url, job, instance, resources, log_level)
    with connect(database_url, autocommit=True) as keeper:
        store.claim_job(keeper, job.id)
        return _materialize_claimed(database_url, job, instance, resources, log_level)


def _materialize_claimed(
    database_url: str,
    job: store.Job,
    instance: dg.DagsterInstance | None,
    resources: dict[str, Any] | None,
    log_level: str,
) -> store.Job:
    """``materialize_job`` once this process holds the job's lock."""
    dagster_instance = instance or dg.DagsterInstance.get()
    _cancel_killed_runs(dagster_instance, job.id)
    return _materialize(database_url, job, dagster_instance, resources, log_level)


def _cancel_killed_runs(instance: dg.DagsterInstance, job_id: str) -> None:
    """Report canceled the runs a ``leads`` process started for the job that Dagster still records as running.
    Only while holding the job's lock: no ``leads`` process runs the job then, so such a run's process was killed
    and never wrote its end (Dagster's UI showed it running for good). Canceled, not failed: the run failure
    sensor would settle the job as failed (and post that to its webhook), where it is interrupted and resumable.
    Runs Dagster launched are not touched."""
    end_killed_runs(
        instance,
        "the leads process running it was killed: the job is interrupted",
        failed=False,
        tags={JOB_TAG: job_id, "leads/source": "cli"},
    )


def cancel_killed_runs(database_url: str, job_id: str, instance: dg.DagsterInstance | None = None) -> None:
    """What a reader finding the job interrupted does: report its killed runs canceled (``_cancel_killed_runs``),
    holding the job's lock meanwhile so a ``leads jobs resume`` starting now cannot have its new run canceled."""
    with connect(database_url, autocommit=True) as keeper:
        if liveness.claim(keeper, liveness.ENRICHMENT_JOB, job_id):
            _cancel_killed_runs(instance or dg.DagsterInstance.get(), job_id)


WAITING: Final = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING)
"""The statuses of a run Dagster is to start: it runs its job's sources once it does."""


def require_resumable(database_url: str, job_id: str, instance: dg.DagsterInstance | None = None) -> None:
    """Refuse a resume (by ``leads jobs resume``, holding the job's lock) of a job a run Dagster launched runs or
    is to run. A job of a version before sql/067 whose run still waited in Dagster's run queue at the upgrade reads
    interrupted (sql/116): resumed, it ran here and again in that run once the queue started it. A run that took
    the job over before the lock was taken (``store.run_by_dagster``) runs it; one that starts later stands down."""
    with connect(database_url) as conn:
        if not store.runs_in_process(conn, job_id):
            raise PermanentError(
                f"enrichment job {job_id} is run by a Dagster run that started meanwhile: `leads jobs show {job_id}"
                " --wait` follows it"
            )
    dagster_instance = instance or dg.DagsterInstance.get()
    waiting = [
        run
        for tags in ({JOB_TAG: job_id}, {"dagster/partition": job_id})  # launched from the UI: by its partition
        for run in dagster_instance.get_runs(dg.RunsFilter(tags=tags, statuses=list(WAITING)))
        if run.tags.get("leads/source") != "cli"  # (a run of a `leads` process runs in that process)
    ]
    if waiting:
        raise PermanentError(
            f"enrichment job {job_id} waits in Dagster's run queue (run {waiting[0].run_id}), which runs it once it"
            f" starts: `leads jobs show {job_id} --wait` follows it; terminate that run in the Dagster UI to resume"
            " the job here instead"
        )


def _materialize(
    database_url: str, job: store.Job, instance: dg.DagsterInstance, resources: dict[str, Any] | None, log_level: str
) -> store.Job:
    from leads_pipeline.definitions import assets  # the Definitions' assets; imported late (it imports this module)
    from leads_pipeline.defs.resources import default_resources

    by_key = {key.to_user_string(): asset for asset in assets for key in asset.keys}
    keys = launchable_sources(job, set(by_key))
    instance.add_dynamic_partitions(BATCHES, [job.id])
    try:
        result = materialize_here(
            [by_key[key] for key in keys],
            partition_key=job.id,
            instance=instance,
            resources=resources or default_resources(),
            run_config=run_config(job, keys),
            tags=run_tags(job, "cli"),
            log_level=log_level,
        )
    except dg.DagsterError as exc:
        finish_run(database_url, job.id, "-", success=False, failure=str(exc))
        raise PermanentError(f"enrichment job {job.id} could not start: {exc}") from exc
    if result.dagster_run.status == dg.DagsterRunStatus.CANCELED:
        # interrupted (``stops_on_interrupt``): left processing, as a kill leaves it; once this process lets go of
        # its lock the job reads as interrupted and ``leads jobs resume`` goes on with it
        raise PermanentError(f"enrichment job {job.id} was interrupted: `leads jobs resume {job.id}` goes on with it")
    failure = None
    if not result.success:
        failed = failed_step_error(result)
        failure = failed[1] if failed else "the enrichment run failed"
    return finish_run(database_url, job.id, result.run_id, success=result.success, failure=failure)
