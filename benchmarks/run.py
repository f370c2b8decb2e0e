"""`make bench`: every benchmark, first the import one, end to end through the same code path as `leads import`.

Writes ``benchmarks/out/report.json`` with rows/s, wall time, peak RSS of the whole process tree (the CLI process
and its chunk-preparing workers), the CPU seconds of the server, of this process and of the workers, and the ratio
to a bare ``COPY`` of the same file into an empty table, then each other benchmark's figures. Uses its own embedded
PostgreSQL under ``benchmarks/out/home`` unless DATABASE_URL is set, and stops it at the end. ``--quick`` (``make
bench-quick``) runs each at its smallest size instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from benchmarks import scoring, search
from benchmarks.contacts import contacts_benchmark
from benchmarks.crm import crm_benchmark
from benchmarks.demo import demo_benchmark
from benchmarks.enrichment import enrichment_benchmark
from benchmarks.privacy_screening import screening_benchmark
from benchmarks.rate_limits import rate_limits_benchmark
from leads_pipeline.lib.runtime import leads_home, stop_embedded_postgres

OUT = Path(__file__).resolve().parent / "out"

FULL: dict[str, dict[str, int]] = {
    "import": {"rows": 1_000_000},
    "lists_search_dedupe": {"rows": 1_000_000, "queries": 200, "import_rows": 100_000},
    "contacts": {"companies": 500, "people": 5_000},
    "enrichment": {"people": 10_000, "companies": 500},
    "scoring": {"seeds": 5, "leads": 100_000},
    "crm": {"throughput_leads": 100_000, "reliability_leads": 20_000},
    "privacy_screening": {},
    "rate_limits": {"calls": 5_000, "seconds": 20},
    "demo": {},
}
"""``make bench``: each benchmark (its key in the report) with the sizes README's figures were measured at."""

QUICK: dict[str, dict[str, int]] = {
    "import": {"rows": 10_000},
    "lists_search_dedupe": {"rows": 10_000, "queries": 20, "import_rows": 5_000},
    "contacts": {"companies": 50, "people": 500},
    "enrichment": {"people": 500, "companies": 50},
    "scoring": {"seeds": 1, "leads": 10_000},
    "crm": {"throughput_leads": 20_000, "reliability_leads": 2_500},
    "privacy_screening": {},
    "rate_limits": {"calls": 500, "seconds": 4},
    "demo": {},
}
"""``make bench-quick``: the smallest sizes at which each benchmark still goes through every path it measures (crm:
more requests than one HubSpot burst of 190, and past the 2,000-lead bulk threshold; scoring: one holdout besides
the anchor's), so that a contributor sees that every benchmark runs. Its figures are not the ones README quotes."""


def scoring_single_threaded(seeds: int, leads: int) -> dict[str, Any]:
    """The scoring benchmark as README's figures were measured: ``OMP_NUM_THREADS=1 python -m benchmarks.scoring``.

    It runs in a child process because OpenMP reads the variable once, when it is loaded; in-process, without it,
    a full ``make bench`` on a loaded 2-core machine ran scoring past 600 s."""
    command = [sys.executable, "-m", "benchmarks.scoring", "--seeds", str(seeds), "--leads", str(leads)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # with the server the benchmarks before it started (DATABASE_URL)
    subprocess.run(command, env=env, cwd=Path(__file__).resolve().parents[1], check=True)
    report: dict[str, Any] = json.loads((scoring.OUT / "scoring.json").read_text())
    return report


def benchmarks() -> dict[str, Callable[..., dict[str, Any]]]:
    """What runs each benchmark of ``FULL`` and ``QUICK``, given its settings (looked up at each call)."""
    return {
        "import": import_benchmark,
        "lists_search_dedupe": search.bench_report,
        "contacts": contacts_benchmark,
        "enrichment": enrichment_benchmark,
        "scoring": scoring_single_threaded,
        "crm": crm_benchmark,
        "privacy_screening": screening_benchmark,
        "rate_limits": rate_limits_benchmark,
        "demo": demo_benchmark,
    }


class PeakRss:
    """Samples the resident memory of this process and all its children every 50 ms; keeps the peak sum.

    The process tree is listed every ``TREE_SAMPLES`` samples (0.5 s) only: listing it reads every process of the
    machine (psutil walks /proc: ~3.5 ms with ~230 processes), which at each sample took ~7% of a core from the
    import being measured, on a machine whose two cores the import keeps busy. A child (the forkserver, a chunk
    worker, living for the whole import) is counted from at most 0.5 s after it started."""

    SAMPLE_SECONDS = 0.05
    TREE_SAMPLES = 10

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        tree = [me]
        sampled = 0
        while not self._stop.wait(self.SAMPLE_SECONDS):
            if sampled % self.TREE_SAMPLES == 0:
                tree = [me, *me.children(recursive=True)]
            sampled += 1
            total = 0
            for process in tree:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def server_cpu_seconds(home: Path) -> float | None:
    """CPU seconds the embedded PostgreSQL server has used so far: the postmaster, its live processes and the
    ones that ended (backends, parallel workers, autovacuum). On a shared machine wall time is distorted by
    other work; the difference of two readings is what the server spent in between. None without a local server."""
    pid_file = home / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    used = postmaster.cpu_times()
    total = used.user + used.system + used.children_user + used.children_system
    for child in postmaster.children():
        try:
            child_used = child.cpu_times()
        except psutil.Error:
            continue
        total += child_used.user + child_used.system
    return total


def children_cpu_seconds() -> float:
    """CPU seconds of this process's live children and of the processes they reaped: the chunk workers' server
    (a forkserver, alive until this process ends) and the workers it forked and reaped. ``os.times()`` counts
    neither: only children this process reaped, and the workers are the forkserver's."""
    total = 0.0
    for child in psutil.Process().children():
        try:
            used = child.cpu_times()
        except psutil.Error:
            continue
        total += used.user + used.system + used.children_user + used.children_system
    return total


def _cpu_delta(before: float | None, after: float | None) -> float | None:
    return round(after - before, 1) if before is not None and after is not None else None


def bare_copy_seconds(database_url: str, path: Path, columns: int) -> float:
    """Seconds to COPY the file into an empty table of text columns: the floor any import is compared to."""
    from leads_pipeline.lib.store.db import connect

    with connect(database_url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_bare_copy")
        conn.execute(f"CREATE TABLE bench_bare_copy ({', '.join(f'c{i} text' for i in range(columns))})")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor().copy("COPY bench_bare_copy FROM STDIN (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_bare_copy")
    return elapsed


def import_benchmark(rows: int) -> dict[str, Any]:
    from benchmarks.generate_import import HEADER, generate
    from leads_pipeline.cli import run_cli_import
    from leads_pipeline.commands.common import acting_user
    from leads_pipeline.lib.runtime import prepare_environment
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import create_list
    from leads_pipeline.lib.store.migrations import apply_migrations

    os.environ.setdefault("LEADS_HOME", str(OUT / "home"))
    env = prepare_environment()
    apply_migrations(env.database_url)
    path = OUT / f"import_{rows}.csv"
    if not path.exists():
        generate(path, rows)
    copy_seconds = bare_copy_seconds(env.database_url, path, len(HEADER))
    list_name = f"bench-{datetime.now(UTC):%Y%m%d%H%M%S}"
    with connect(env.database_url) as conn:
        create_list(conn, list_name, owner=acting_user())  # the import is the acting user's, as from the CLI
    server_before = server_cpu_seconds(env.home) if env.embedded else None
    with PeakRss() as rss:
        started = time.perf_counter()
        cpu_started = sum(os.times()[:4])
        workers_started = children_cpu_seconds()
        status = run_cli_import(
            env, path, list_name, on_duplicate="skip", mapping={}, default_region="US", show_progress=False
        )
        seconds = time.perf_counter() - started
        python_cpu = sum(os.times()[:4]) - cpu_started
        workers_cpu = children_cpu_seconds() - workers_started  # the pool was shut down (joined) at the last chunk
    return {
        "rows": rows,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "peak_rss_mb": round(rss.peak / 1e6),
        "server_cpu_seconds": _cpu_delta(server_before, server_cpu_seconds(env.home) if env.embedded else None),
        "python_cpu_seconds": round(python_cpu, 1),  # this process
        "workers_cpu_seconds": round(workers_cpu, 1),  # the chunk workers and their forkserver
        "bare_copy_seconds": round(copy_seconds, 2),
        "ratio_to_bare_copy": round(seconds / copy_seconds, 2),
        "results": status["results"],
        "warnings": status["warnings"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, help="rows of the import and search benchmarks instead of their size's")
    parser.add_argument("--quick", action="store_true", help="each benchmark at its smallest size (report-quick.json)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LEADS_HOME", str(OUT / "home"))
    home, embedded = leads_home(), not os.environ.get("DATABASE_URL")  # set by the benchmarks' prepare_environment
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "quick": args.quick}
    try:
        for name, benchmark in benchmarks().items():
            settings = sizes[name] | ({"rows": args.rows} if args.rows and "rows" in sizes[name] else {})
            report[name] = benchmark(**settings)
    finally:  # the server (up to 2 GB of shared buffers) outlived `make bench`: make stop stops .leads' only
        if embedded:
            stop_embedded_postgres(home)
    (OUT / ("report-quick.json" if args.quick else "report.json")).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
