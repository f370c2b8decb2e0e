"""The executor of every run the daemon or the UI launches: Dagster's multiprocess executor, with the stages that
spend provider credits run one at a time.

Each paid stage (email and phone contacts, LinkedIn profiles, company profiles) reads what the job's ledger has
already charged each lead when it starts, so that ``max_credits_per_lead`` caps a lead over all the stages of a
job. Started side by side, as the multiprocess executor starts steps that do not depend on each other, every
stage read an empty ledger and a lead could cost the cap once per stage. ``leads enrich`` runs in process, where
steps run one after another anyway. The other steps of a run keep running beside them.

A drop-folder import runs in process (``defs/imports/jobs.py``). Other runs keep this executor. Under the
in-process one (the drop folder's runs, ``leads import``, ``leads score``, ``leads jobs run``), an interrupt
(Ctrl-C, terminating the run from the UI) reaches the step in the run's own process, where Dagster retries an
interrupted step by its RetryPolicy: every asset with one ends on an interrupt instead (``stops_on_interrupt``).
"""

import contextlib
import functools
import os
import signal
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import dagster as dg

from leads_pipeline.lib.errors import INTERRUPTED
from leads_pipeline.lib.limits import cpu_count
from leads_pipeline.lib.signals import handlers_restored
from leads_pipeline.lib.wording import plain_number

INTERRUPTS = (signal.SIGINT, signal.SIGTERM)
"""What Dagster takes for an interrupt of a step (``dagster._utils.interrupts``)."""

P = ParamSpec("P")
R = TypeVar("R")

SPENDS_CREDITS_TAG = "leads/spends_credits"
"""The op tag of a stage that spends provider credits (its value is ignored)."""

SPENDS_CREDITS = {SPENDS_CREDITS_TAG: "true"}

BACKGROUND_PRIORITY = {"dagster/priority": "-10"}
"""The run tags of the runs the daemon requests by itself (drop-folder imports, the daily rescore, the CRM syncs,
retention and CRM erasures schedules). The run queue
starts runs by ``dagster/priority``, higher first, in the order they came otherwise: with no tag, 50 files dropped
at once queued a run launched from the UI or by ``leads`` (priority 0) behind all of their imports, ~30 min. They
rank as ``leads enrich --priority low``, and as the enrichment runs ``enrich_after_import_sensor`` starts, whose
priority is their list's setting: low unless ``leads enrich-after-import --priority`` said otherwise."""


def final_failure(description: str) -> dg.Failure:
    """A step's failure that Dagster does not retry by the asset's RetryPolicy, for what retrying cannot cure (a bad
    file or configuration, an unknown list, a role refused, an interrupt): ``description`` is the run's one line."""
    return dg.Failure(description=description, allow_retries=False)


def materialize_here(
    assets: Sequence[dg.AssetsDefinition],
    *,
    instance: dg.DagsterInstance,
    resources: Mapping[str, object],
    run_config: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
    partition_key: str | None = None,
    raise_on_error: bool = False,
    log_level: str = "CRITICAL",
) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` in this process, as a `leads` command does: a run tagged as the CLI's, Dagster's
    console log at ``log_level`` (CRITICAL: the command says what went wrong itself) and its warnings silenced.

    SIGINT's and SIGTERM's handlers are restored after: Dagster leaves SIGTERM with SIGINT's once a run ends, and a
    command started in the background (where the shell ignores SIGINT) then ignored SIGTERM: ``kill`` no longer
    stopped `leads demo` between its stages."""
    config = {**run_config, "loggers": {"console": {"config": {"log_level": log_level}}}}
    with handlers_restored(INTERRUPTS), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dg.materialize(
            list(assets),
            partition_key=partition_key,
            instance=instance,
            resources=dict(resources),
            run_config=config,
            tags={"leads/source": "cli", **(tags or {})},
            raise_on_error=raise_on_error,
        )


def failed_step_error(result: dg.ExecuteInProcessResult) -> tuple[str, str] | None:
    """The first failed step's innermost error, as its class's name and the first line of its message without
    the class: what went wrong ("the provider's reply could not be read"), not Dagster's wrapping of it ("Execution
    of step ... failed", "Error occurred while executing op ..."). None when no step failed."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return error.cls_name or "", str(error.message).strip().splitlines()[0].split(": ", 1)[-1]
    return None


TRANSIENT_RETRIES = 3
"""How many times a paid stage's step is retried for the leads or companies a provider could not answer."""
TRANSIENT_RETRY_DELAY_S = 5.0
"""The wait before the first of those retries, doubled for each next one (5, 10, 20 s); tests set it to 0."""


def retries_left(context: dg.AssetExecutionContext) -> bool:
    """Whether ``retry_failed_leads`` would still retry the step (its warnings say "asking again", not "run again")."""
    return context.retry_number < TRANSIENT_RETRIES


def retry_failed_leads(context: dg.AssetExecutionContext, failed: int, what: str) -> None:
    """Has Dagster retry the step, after a backoff, when ``failed`` leads (or companies) met a temporary provider
    failure (outage, 5xx, rate limit after the client's own retries) and retries are left: a blip no longer leaves
    them to the user to rerun. What was answered is written and marked done, so the retry asks only the failed ones
    again. Call it after the step's transaction is committed (the raise would roll it back)."""
    if not failed or not retries_left(context):
        return
    wait = TRANSIENT_RETRY_DELAY_S * 2**context.retry_number
    context.log.info(
        f"{what}: {failed:,} failed; asking them again in {plain_number(wait)} s"
        f" (retry {context.retry_number + 1} of {TRANSIENT_RETRIES})"
    )
    raise dg.RetryRequested(max_retries=TRANSIENT_RETRIES, seconds_to_wait=wait)


def step_processes() -> int | None:
    """How many of a run's steps the executor runs at once: one per core this process may use (``limits``), or
    ``DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT`` (None: Dagster reads it). Dagster's default is
    ``multiprocessing.cpu_count()``, the host's cores: in a pod or container given 2 CPUs on a 64-core host, a run
    started up to 64 step processes (each a Python process loading the code location) where the project is
    measured with two."""
    return None if os.environ.get("DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT") else cpu_count()


def _executor_config(_: object) -> dict[str, object]:
    """Resolved as a run starts, in its process: nothing is read at import time."""
    return {"max_concurrent": step_processes(), "tag_concurrency_limits": [{"key": SPENDS_CREDITS_TAG, "limit": 1}]}


executor = dg.multiprocess_executor.configured(_executor_config, name="multiprocess", config_schema={})


@contextlib.contextmanager
def _interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` meanwhile, not Dagster's ``DagsterExecutionInterruptedError``:
    psycopg cancels the query in flight on the former only, and an import interrupted mid-chunk left its
    connection busy, which printed psycopg's "error ignored in rollback ... another command is already in
    progress" lines before the interrupt's one. Only the main thread has handlers (``leads enrich --wait`` runs its
    steps in another one, which interrupts never reach)."""
    with handlers_restored(INTERRUPTS, meanwhile=signal.default_int_handler):
        yield


def stops_on_interrupt(
    compute: Callable[Concatenate[dg.AssetExecutionContext, P], R],
) -> Callable[Concatenate[dg.AssetExecutionContext, P], R]:
    """An asset's function that ends on an interrupt, failed with one line (``INTERRUPTED``), not retried. Dagster
    retries an interrupted step by its RetryPolicy when the step runs in the run's process: Ctrl-C on
    ``leads import`` or ``leads score``, SIGINT or SIGTERM to ``leads jobs run``, a run terminated from the UI under
    the in-process executor went on to the end. The run is reported canceling, so it ends canceled (as a run
    terminated from the UI does; the run failure sensor does not settle its enrichment job as failed), and its
    steps not started yet, which the in-process executor would still run, end at once. What the asset wrote stays
    as a kill leaves it: resumable. Goes under ``@dg.asset``."""

    @functools.wraps(compute)
    def compute_or_stop(context: dg.AssetExecutionContext, *args: P.args, **kwargs: P.kwargs) -> R:
        run = context.instance.get_run_by_id(context.run_id)
        if run is not None and run.status == dg.DagsterRunStatus.CANCELING:
            raise final_failure(INTERRUPTED)
        try:
            with _interrupts_as_keyboard_interrupt():
                return compute(context, *args, **kwargs)
        except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError) as exc:
            run = context.instance.get_run_by_id(context.run_id)
            if run is not None and run.status == dg.DagsterRunStatus.STARTED:
                context.instance.report_run_canceling(run, message=INTERRUPTED)
            raise final_failure(INTERRUPTED) from exc

    return compute_or_stop
