"""What tests of runs at once rely on in the shared helpers (``support.py``)."""

import logging
import os
import threading

import dagster as dg
import pytest

from leads_pipeline_tests.support import instance_of_a_run_at_once


@dg.asset
def logged(context: dg.AssetExecutionContext) -> int:
    """A step that logs, as every stage does."""
    context.log.info("stored")
    return 1


def test_a_run_at_once_starts_while_another_run_s_thread_is_in_a_log_handler() -> None:
    """Two runs at once of test instances hung for ever now and then: a run's start took every log handler's lock
    of the process under logging's module lock (Dagster configures logging for each run of an instance with
    settings), while the other run's thread, in its event-log handler, waited for the module lock. A run of this
    helper's instance starts and ends while another thread holds a handler's lock."""
    busy = logging.Handler()  # the other run's handler, in the middle of an event
    ended = threading.Event()

    def run() -> None:
        with instance_of_a_run_at_once() as instance:
            assert dg.materialize([logged], instance=instance).success
        ended.set()

    thread = threading.Thread(target=run, daemon=True)
    busy.acquire()
    try:
        thread.start()
        started_and_ended = ended.wait(60)
    finally:
        busy.release()  # a run stuck on it goes on to its end
    thread.join(60)
    assert started_and_ended


def test_instances_of_runs_at_once_leave_dagster_home_as_it_was() -> None:
    """Each test instance set ``DAGSTER_HOME`` to its folder on open and put back what it found on close: the
    first of two runs at once to close left it naming that run's deleted folder for the tests after."""
    before = os.environ.get("DAGSTER_HOME")
    first, second = instance_of_a_run_at_once(), instance_of_a_run_at_once()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first run ends first
    second.__exit__(None, None, None)
    assert os.environ.get("DAGSTER_HOME") == before


def test_runs_at_once_leave_the_process_s_stderr_to_it(capfd: pytest.CaptureFixture[str]) -> None:
    """A run's step of a test instance pointed the process's stdout and stderr at its log file and put back what
    it found: after a run that began while another's step was on and ended last, stderr wrote to the other's file
    (and what that run's step wrote after the other ended was lost), none of it in the test's captured output."""
    with instance_of_a_run_at_once() as one, instance_of_a_run_at_once() as two:
        first = one.compute_log_manager.capture_logs(["first"])  # each run's step, its output captured
        second = two.compute_log_manager.capture_logs(["second"])
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # the first run ends first
        second.__exit__(None, None, None)
        os.write(2, b"after both runs\n")
    assert "after both runs" in capfd.readouterr().err
