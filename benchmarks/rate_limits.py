"""What sharing a provider's bucket through PostgreSQL costs and whether the rate holds (``lib/ratelimit.py``).

Overhead: N processes (1 and 4) take ``calls`` tokens each from one ``SharedTokenBucket`` set far above any
provider's rate (a million a second), so every call is the statement alone: calls/s of all of them together, and
the in-process ``TokenBucket`` for comparison. Rate: 4 processes, each pacing the key at ``per_second`` (as four
runs of a backfill do), 4 threads each: the combined rate of their calls against the one they were given, and the
most calls in any second (as the processes saw them return: a thread woken late and the next on time count closer
than the server granted them). On the benchmark database (``benchmarks/out/home`` unless DATABASE_URL is set).
Run alone: ``python -m benchmarks.rate_limits``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
UNLIMITED = 1_000_000
"""Calls a second of the overhead run: no call ever waits, so what is measured is the statement."""


def _database() -> str:
    from leads_pipeline.lib.runtime import prepare_environment
    from leads_pipeline.lib.store.migrations import apply_migrations

    os.environ.setdefault("LEADS_HOME", str(OUT / "home"))
    env = prepare_environment()
    apply_migrations(env.database_url)
    return env.database_url


def _child(database_url: str, key: str, per_second: int, calls: int, threads: int) -> None:
    """One process: waits for the parent's go, takes ``calls`` tokens on ``threads`` threads, prints the times."""
    from leads_pipeline.lib.ratelimit import SharedTokenBucket

    bucket = SharedTokenBucket(database_url, key, per_second, 1.0, burst=1.15)
    bucket.acquire()  # the connection opened before the clock starts
    print("ready", flush=True)
    sys.stdin.readline()

    def take(_: int) -> float:
        bucket.acquire()
        return time.time()

    with ThreadPoolExecutor(threads) as pool:
        sent = list(pool.map(take, range(calls)))
    print(json.dumps(sent), flush=True)


def _processes(database_url: str, processes: int, per_second: int, calls: int, threads: int) -> list[float]:
    """The send times (wall clock) of ``processes`` children pacing one new key together, started at once."""
    key = f"bench:{uuid.uuid4().hex[:12]}"
    command = [sys.executable, "-m", "benchmarks.rate_limits", "--child", database_url, key]
    command += [str(per_second), str(calls), str(threads)]
    children = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(processes)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    sent: list[float] = []
    for child in children:
        out, _ = child.communicate(timeout=600)
        if child.returncode:
            raise RuntimeError(f"a benchmark process failed ({child.returncode})")
        sent += json.loads(out)
    return sorted(sent)


def _busiest_second(sent: list[float]) -> int:
    first, most = 0, 0
    for last, at in enumerate(sent):
        while at - sent[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def rate_limits_benchmark(calls: int, seconds: int) -> dict[str, Any]:
    from leads_pipeline.lib.ratelimit import TokenBucket

    database_url = _database()
    local = TokenBucket(UNLIMITED, 1.0)
    started = time.perf_counter()
    for _ in range(calls):
        local.acquire()
    report: dict[str, Any] = {"in_process_calls_per_second": round(calls / (time.perf_counter() - started))}
    for processes in (1, 4):
        sent = _processes(database_url, processes, UNLIMITED, calls, 1)
        report[f"shared_calls_per_second_{processes}_processes"] = round(len(sent) / (sent[-1] - sent[0]))
    per_second = 20
    sent = _processes(database_url, 4, per_second, per_second * seconds // 4, 4)
    report["paced"] = {
        "processes": 4,
        "each_given_per_second": per_second,
        "combined_per_second": round((len(sent) - 1) / (sent[-1] - sent[0]), 2),
        "most_in_one_second": _busiest_second(sent),
    }
    return report


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        database_url, key, per_second, calls, threads = sys.argv[2:7]
        _child(database_url, key, int(per_second), int(calls), int(threads))
        return
    from benchmarks.run import FULL

    print(json.dumps(rate_limits_benchmark(**FULL["rate_limits"]), indent=2))


if __name__ == "__main__":
    main()
