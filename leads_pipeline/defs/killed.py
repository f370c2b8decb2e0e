"""Dagster runs whose ``leads`` process was killed, which Dagster still shows running.

A process killed outright (SIGKILL, a power cut) never writes its Dagster run's end: the run stays STARTED in the
UI for good. The advisory lock of the sync run, enrichment job or import it worked for (``lib/store/liveness``) is
what tells that the process is gone; whoever finds it interrupted reports its Dagster run ended here.
"""

from typing import Final

import dagster as dg

RUNNING: Final = (
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
"""The statuses of a run Dagster takes for one still going (a run interrupted is CANCELING until its process
reports it canceled: killed then, it stays CANCELING as a killed run stays STARTED)."""


WILL_RETRY_TAG: Final = "dagster/will_retry"
"""Set by Dagster on a failed run it will run again (``run_retries`` in dagster.yaml)."""


def end_killed_runs(
    instance: dg.DagsterInstance,
    message: str,
    *,
    failed: bool,
    run_ids: list[str] | None = None,
    tags: dict[str, str] | None = None,
    statuses: tuple[dg.DagsterRunStatus, ...] = RUNNING,
    started_before: float | None = None,
    retried: bool = True,
) -> int:
    """Report the runs of ``run_ids`` (or with ``tags``) that Dagster still records in one of ``statuses``
    (running) ended, failed or (``failed=False``) canceled, with ``message``; how many. Only for runs whose process
    is known to be gone: the caller found the lock of what they worked for free. ``started_before`` (a POSIX
    time): only the runs that started before it. ``retried=False``: a run reported failed is not run again by
    Dagster's run retries (dagster.yaml), where the caller runs what it did itself."""
    if run_ids is not None and not run_ids:
        return 0
    records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids, tags=tags or {}, statuses=list(statuses)))
    runs = [
        record.dagster_run
        for record in records
        if started_before is None or (record.start_time is not None and record.start_time < started_before)
    ]
    for run in runs:
        if failed:
            instance.report_run_failed(run, message=message)
            if not retried:  # after the report, which sets it from the run retries' settings
                instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: "false"})
        else:
            instance.report_run_canceled(run, message=message)
    return len(runs)
