"""The processes that prepare an import's chunks (the import itself is tested against PostgreSQL in
store/test_imports.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from leads_pipeline.lib.workers import SHORT_ROW_BYTES, worker_count
from leads_pipeline_tests.paths import DEMO_FILE

CORES = min(2, os.cpu_count() or 1)


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
