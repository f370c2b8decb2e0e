"""The processes that prepare an import's chunks (the import itself is tested against PostgreSQL in
store/test_imports.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from leads_pipeline.lib.limits import cpu_count, memory_bytes
from leads_pipeline.lib.workers import SHORT_ROW_BYTES, WORKERS_MEMORY, start_pool, worker_count
from leads_pipeline_tests.paths import DEMO_FILE

CORES = min(2, cpu_count()) if memory_bytes() >= WORKERS_MEMORY else 1  # (test_limits varies the limits)


def test_a_file_of_about_a_chunk_is_prepared_in_the_importing_process() -> None:
    size = DEMO_FILE.stat().st_size
    assert worker_count(0, size // SHORT_ROW_BYTES + 1, DEMO_FILE) == 1
    assert worker_count(0, 50_000, DEMO_FILE) == 1  # the shipped demo: 41 rows


def test_a_larger_file_gets_a_worker_per_core_and_an_explicit_count_is_kept(tmp_path: Path) -> None:
    size = DEMO_FILE.stat().st_size
    assert worker_count(0, size // SHORT_ROW_BYTES, DEMO_FILE) == CORES
    assert worker_count(3, 50_000, DEMO_FILE) == 3
    assert worker_count(0, 1, tmp_path / "missing.csv") == 1  # refused before any work


def test_the_worker_server_runs_once_started_and_the_workers_fork_from_it() -> None:
    # In a fresh interpreter: in this one an earlier import may have started the server already.
    probe = """
import json, os, psutil
from leads_pipeline.lib.workers import start_pool, start_worker_server
start_worker_server()
servers = [c.pid for c in psutil.Process().children() if "multiprocessing.forkserver" in " ".join(c.cmdline())]
pool = start_pool(2)
print(json.dumps({"servers": servers, "parents": sorted({pool.submit(os.getppid).result() for _ in range(4)})}))
pool.shutdown()
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    found = json.loads(result.stdout)
    assert len(found["servers"]) == 1  # running before any pool asked for it
    assert found["parents"] == found["servers"]  # every worker forked from it


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _imported(module: str) -> bool:
    return module in sys.modules


def test_a_worker_finds_the_module_of_its_chunks_imported_before_its_first_chunk() -> None:
    """The forkserver imports it once: each worker imported the importer (and the database driver it stages its
    chunk with) at its first chunk, which waited for it."""
    pool = start_pool(2)
    assert pool is not None
    try:
        assert pool.submit(_imported, "leads_pipeline.lib.importer").result(timeout=60)
        assert pool.submit(_imported, "psycopg").result(timeout=60)
    finally:
        pool.shutdown(cancel_futures=True)


def test_chunk_workers_leave_ctrl_c_to_the_importing_process() -> None:
    """A terminal's Ctrl-C reaches the whole process group: each chunk worker died printing a KeyboardInterrupt
    traceback before the import's one line. The workers ignore it; the importing process stops the pool."""
    pool = start_pool(2)
    assert pool is not None
    try:
        busy = [pool.submit(_pid_after, 1.0) for _ in range(2)]  # both workers started and initialized
        pids = {future.result(timeout=60) for future in busy}
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, signal.SIGINT)
        time.sleep(0.5)
        assert {pool.submit(_pid_after, 0.0).result(timeout=60) for _ in range(4)} <= pids
        assert [child.is_alive() for child in multiprocessing.active_children() if child.pid in pids] == [True, True]
    finally:
        pool.shutdown(cancel_futures=True)
