"""The import benchmark's own measuring: what it adds to the import it measures."""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from benchmarks import run
from benchmarks.run import PeakRss
from leads_pipeline.lib import runtime


def test_peak_rss_lists_the_process_tree_every_half_second_and_counts_a_child_started_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listing the tree walks every process of the machine: at each 50 ms sample it took ~7% of a core from the
    import. A child started while it samples (a chunk worker) is still counted."""
    listed: list[float] = []
    samples: list[float] = []
    children, memory_info = psutil.Process.children, psutil.Process.memory_info

    def counted(self: psutil.Process, recursive: bool = False) -> list[psutil.Process]:
        listed.append(time.monotonic())
        return children(self, recursive=recursive)

    def sampled(self: psutil.Process) -> object:
        if self.pid == os.getpid():  # this process is read once per sample
            samples.append(time.monotonic())
        return memory_info(self)

    monkeypatch.setattr(psutil.Process, "children", counted)
    monkeypatch.setattr(psutil.Process, "memory_info", sampled)
    holding = "b = bytearray(200 * 1024 * 1024); import time; time.sleep(30)"  # 200 MB resident while it sleeps
    with PeakRss() as rss:
        time.sleep(0.2)
        child = subprocess.Popen([sys.executable, "-c", holding])
        try:
            time.sleep(2.8)
        finally:
            child.kill()
            child.wait()
    assert 3 <= len(listed) <= 8  # every 0.5 s over ~3 s (~60 at each sample)
    # once every TREE_SAMPLES samples, however slowly a loaded machine let the samples come
    assert len(listed) == math.ceil(len(samples) / PeakRss.TREE_SAMPLES)
    assert rss.peak > psutil.Process().memory_info().rss + 150 * 1024 * 1024


@pytest.mark.integration
def test_make_bench_stops_the_postgresql_its_benchmarks_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded server under benchmarks/out/home (shared buffers up to 2 GB) kept running after ``make bench``
    ended, and ``make stop`` stops the one under .leads only."""
    for name in ("DATABASE_URL", "LEADS_HOME", "DAGSTER_PG_URL", "DAGSTER_HOME", "LEADS_DAGSTER_STORAGE"):
        monkeypatch.setenv(name, "")  # restored after the test: prepare_environment sets them in os.environ
        monkeypatch.delenv(name)
    started: list[str] = []

    def import_benchmark(rows: int) -> dict[str, Any]:  # the server started as the import benchmark starts it
        os.environ.setdefault("LEADS_HOME", str(run.OUT / "home"))
        started.append(runtime.prepare_environment().database_url)
        return {"rows": rows}

    out = Path(tempfile.mkdtemp(prefix="leads-test-bench-"))  # pytest's tmp_path is closed to PostgreSQL's user
    monkeypatch.setattr(run, "OUT", out)
    # every other benchmark does nothing (the rate-limit one alone took ~30 s): looked up as `main` looks them up
    others = {name: dict for name in run.benchmarks() if name != "import"}
    monkeypatch.setattr(run, "benchmarks", lambda: {"import": import_benchmark, **others})
    monkeypatch.setattr(sys, "argv", ["run", "--rows", "10"])
    try:
        run.main()
        assert started and not runtime.stop_embedded_postgres(out / "home"), "the benchmark's server still ran"
        assert json.loads((out / "report.json").read_text())["import"] == {"rows": 10}
    finally:
        runtime.stop_embedded_postgres(out / "home")
        shutil.rmtree(out, ignore_errors=True)


def test_every_benchmark_of_make_bench_has_a_quick_size_it_takes() -> None:
    """There was no quick setting: checking that every benchmark still runs took the full run. ``make bench-quick``
    runs each one ``make bench`` runs, with settings its function takes, smaller."""
    assert list(run.QUICK) == list(run.FULL) == list(run.benchmarks())
    for name, benchmark in run.benchmarks().items():
        parameters = inspect.signature(benchmark).parameters
        assert set(run.QUICK[name]) == set(run.FULL[name]) <= set(parameters), name
        assert all(run.QUICK[name][setting] < size for setting, size in run.FULL[name].items()), name


def test_make_bench_runs_scoring_with_one_openmp_thread_as_readme_measured_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's scoring figures are measured with OMP_NUM_THREADS=1; make bench ran scoring without it (and ran
    past 600 s on a loaded 2-core machine)."""
    children: list[tuple[list[str], str | None]] = []

    def child(command: list[str], *, env: dict[str, str], cwd: Path, check: bool) -> None:
        children.append((command, env.get("OMP_NUM_THREADS")))
        (tmp_path / "scoring.json").write_text('{"seeds": 1}')

    monkeypatch.setattr(run.scoring, "OUT", tmp_path)
    monkeypatch.setattr(run.subprocess, "run", child)
    assert run.scoring_single_threaded(seeds=1, leads=10) == {"seeds": 1}
    assert children == [([sys.executable, "-m", "benchmarks.scoring", "--seeds", "1", "--leads", "10"], "1")]


def test_children_cpu_counts_a_child_alive_and_the_processes_it_reaped() -> None:
    """The import benchmark's CPU figures left out the chunk workers: they are the forkserver's children, and the
    forkserver, alive until the benchmark ends, is never reaped by it (``os.times()`` counts reaped children only).
    A child that forks a worker burning ~0.4 s of CPU, reaps it and stays alive, as the forkserver does."""
    script = (
        "import os, sys, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    end = time.process_time() + 0.4\n"
        "    while time.process_time() < end: pass\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('reaped', flush=True)\n"
        "time.sleep(30)\n"
    )
    before = run.children_cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "reaped\n"
        assert run.children_cpu_seconds() - before >= 0.35
    finally:
        child.kill()
        child.wait()
