"""What tests of runs at once rely on in the shared helpers (``support.py``)."""

import logging
import os
import threading

import dagster as dg

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
