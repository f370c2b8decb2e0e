"""The server CPU profile of the import benchmark: each server process's CPU goes to what it was running."""

from __future__ import annotations

import psutil
import psycopg
import pytest

from benchmarks.server_cpu import ServerCpu, activity_key

BURN = "SELECT count(*) FROM generate_series(1, 15000000)"


@pytest.mark.integration
def test_a_statement_gets_the_cpu_its_backend_spent_running_it(database_url: str) -> None:
    """pg_stat_statements times statements by the clock, which on a loaded machine counts the time a backend waits
    (a COPY waiting for its reader read 18 s for 1.3 s of CPU): the profile gives a statement its backend's CPU."""
    with psycopg.connect(database_url, autocommit=True, application_name="burner") as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")
        backend = psutil.Process(conn.info.backend_pid)
        with ServerCpu(database_url) as profile:
            before = sum(backend.cpu_times()[:2])
            conn.execute(BURN)
            spent = sum(backend.cpu_times()[:2]) - before
            conn.execute("SELECT pg_sleep(0.3)")  # a sample or two after it
    running = profile.seconds[activity_key("client backend", "burner", "active", BURN)]
    assert spent > 0.3
    assert 0.75 * spent <= running <= spent + 0.1
