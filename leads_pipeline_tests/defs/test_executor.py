"""The drop folder's runs import in the run's process, and terminating one from the UI still stops the import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from leads_pipeline.definitions import defs
from leads_pipeline.defs.executor import materialize_here, step_processes, stops_on_interrupt
from leads_pipeline.lib.importer import INTERRUPTED
from leads_pipeline.lib.signals import handlers_restored
from leads_pipeline.lib.store import imports as store
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.support import cli_environment, step_failure

pytestmark = pytest.mark.integration
ROWS = 100_000


def inbox_job() -> dg.JobDefinition:
    """The inbox sensor's job, as the run worker loads it (``dg.reconstructable`` needs a module-level function)."""
    return defs.resolve_job_def(defs.resolve_sensor_def("inbox_sensor").job_name)


def test_the_inbox_sensor_s_runs_import_in_the_run_s_process() -> None:
    """Every dropped file's run started a second process for its one step (the multiprocess executor), which
    loaded the code location again: ~3.5 s of CPU and ~5 s of wall time per file."""
    job = inbox_job()
    assert job.executor_def is dg.in_process_executor
    assert [node.name for node in job.nodes] == ["batch_leads"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_run_starts_a_step_per_core_the_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pinned to one core (taskset, a container's --cpuset-cpus), or in a pod given 2 CPUs on a 64-core host,
    Dagster's default started a step process per core of the host."""
    probe = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
    probe += "from leads_pipeline.defs.executor import executor; "
    probe += "print(executor.apply_config_mapping({}).value['config']['max_concurrent'])"
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT"}
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, env=env).stdout
    assert out.strip() == "1"
    monkeypatch.setenv("DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT", "6")
    assert step_processes() is None  # Dagster reads the setting then


def run_inbox_import(batch: str, path: str) -> None:
    """What the run worker does for an inbox run, in a process the test interrupts as the code server does."""
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("batches", [batch])
        config = {"path": path, "list_name": "dropped", "create_list": True, "chunk_rows": 2_000}
        dg.execute_job(
            dg.reconstructable(inbox_job),
            instance,
            run_config={"ops": {"batch_leads": {"config": config}}},
            tags={"dagster/partition": batch, "leads/source": "inbox"},
        )


def _processed(database_url: str, batch: str) -> int:
    with connect(database_url) as conn:
        record = store.import_for_batch(conn, batch)
        return 0 if record is None else int(store.import_status(conn, record["id"])["progress"]["processed"])


def test_terminating_an_inbox_import_run_stops_the_import_and_leaves_it_resumable(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``terminateRun`` marks the run canceling, then the code server interrupts the run's process (SIGINT). In the
    run's process the interrupted step was retried by batch_leads' RetryPolicy, and the terminated run imported the
    whole file and succeeded; it now stops, canceled, the import resumable."""
    cli_environment(monkeypatch, database_url, tmp_path / "home")
    big = tmp_path / "big.csv"
    big.write_text("Email,First Name\n" + "".join(f"u{i}@example.com,Name{i}\n" for i in range(ROWS)))
    batch = f"import-terminated-{time.time_ns()}"
    code = f"from {__name__} import run_inbox_import; run_inbox_import({batch!r}, {str(big)!r})"
    child = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while _processed(database_url, batch) == 0 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processed(database_url, batch) > 0, "the import never started"
        with dg.DagsterInstance.get() as instance:  # DefaultRunLauncher.terminate
            [run] = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": batch}))
            instance.report_run_canceling(run)
        child.send_signal(signal.SIGINT)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    with connect(database_url) as conn:
        record = store.import_for_batch(conn, batch)
        assert record is not None
        status = store.import_status(conn, record["id"])
    assert (status["status"], status["failure"]) == ("failed", INTERRUPTED)
    assert status["progress"]["processed"] < ROWS
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": batch}))
    assert run.status == dg.DagsterRunStatus.CANCELED


def test_every_asset_with_a_retry_policy_ends_on_an_interrupt() -> None:
    """Dagster retries an interrupted step by its RetryPolicy when the step runs in the run's process: each asset
    with one must end on an interrupt instead (``stops_on_interrupt``), or Ctrl-C on the command running it goes on."""
    stopping = stops_on_interrupt(lambda context: None).__code__
    retried = {
        asset.key.to_user_string(): asset.op.compute_fn.decorated_fn.__code__ is stopping  # type: ignore[union-attr]
        for asset in defs.assets or []
        if isinstance(asset, dg.AssetsDefinition) and asset.op.retry_policy is not None
    }
    assert retried == {
        name: True
        for name in (
            "batch_leads",
            "company_profiles",
            "email_contacts",
            "lead_scores",
            "linkedin_profiles",
            "phone_contacts",
        )
    }


@dg.asset
@stops_on_interrupt
def _slow_query(context) -> None:  # type: ignore[no-untyped-def]
    """A step interrupted while its query runs, as an import is mid-chunk (``context`` unannotated: under this
    module's ``from __future__ import annotations`` Dagster refuses the annotation)."""
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    with connect(os.environ["TEST_DATABASE_URL"]) as conn:
        conn.execute("SELECT pg_sleep(30)")


def test_an_interrupt_cancels_the_query_in_flight_without_psycopg_s_noise(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Dagster raises its own exception on an interrupt, on which psycopg does not cancel the query in flight: the
    connection stayed busy and Ctrl-C on `leads import` mid-chunk printed "error ignored in rollback ... another
    command is already in progress" before the one line. The step now takes the interrupt as KeyboardInterrupt."""
    monkeypatch.setenv("TEST_DATABASE_URL", database_url)
    started = time.monotonic()
    with dg.instance_for_test() as instance:
        result = dg.materialize([_slow_query], instance=instance, raise_on_error=False)
    assert time.monotonic() - started < 20
    failure = step_failure(result)
    assert failure == INTERRUPTED
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []


@dg.asset
def _one() -> int:
    return 1


def test_a_command_in_the_background_still_stops_on_sigterm_after_a_run(tmp_path: Path) -> None:
    """Dagster leaves SIGTERM with SIGINT's handler once a run ends: in a command started in the background, where
    the shell ignores SIGINT, SIGTERM was ignored from then on, and `kill` did not stop `leads demo` between its
    stages. A command's run leaves both handlers as it found them."""

    def stop(*_: object) -> None:
        raise AssertionError("not called")

    with (
        handlers_restored([signal.SIGINT], meanwhile=signal.SIG_IGN),
        handlers_restored([signal.SIGTERM], meanwhile=stop),
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
    ):
        result = materialize_here([_one], instance=instance, resources={}, run_config={})
        assert result.success
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == (signal.SIG_IGN, stop)
