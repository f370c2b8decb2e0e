"""The processes that prepare an import's chunks (the import itself is tested against PostgreSQL in
store/test_imports.py)."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil

from leads_pipeline.lib.workers import SHORT_ROW_BYTES, start_worker_server, worker_context, worker_count
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
    start_worker_server()
    servers = [
        child for child in psutil.Process().children() if "multiprocessing.forkserver" in " ".join(child.cmdline())
    ]
    assert len(servers) == 1
    with ProcessPoolExecutor(max_workers=1, mp_context=worker_context()) as pool:
        assert pool.submit(os.getppid).result() == servers[0].pid
