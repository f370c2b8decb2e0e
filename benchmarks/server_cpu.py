"""`python -m benchmarks.server_cpu --rows 200000`: the import benchmark, with the server's CPU split by what its
processes were doing (each statement, each background process), to find where an import's server time goes.

pg_stat_statements times statements by the clock: on a loaded 2-core machine the COPY feeding the stored-lead check
of a 1M-row import read 18 s there, of which its backend spent 1.3 s of CPU (the rest it waited for the check's
Python to read the rows). Here every server process's CPU (``/proc``) is sampled every 100 ms and what it used since
the last sample goes half to what ``pg_stat_activity`` showed it doing then and half to what it shows now. A
parallel worker counts under its leader's statement. Linux, and a server on this machine (the embedded one).
"""

from __future__ import annotations

import argparse
import os
import re
import threading
from collections import defaultdict
from typing import Any

import psutil
import psycopg

SAMPLE_SECONDS = 0.1


def activity_key(backend_type: str, application: str, state: str | None, query: str | None) -> str:
    """What a server process is doing, as one line: a background process by its type, a session by its
    application and statement (the statement it last ran, when idle), an import's search partition named once."""
    if backend_type not in ("client backend", "parallel worker"):
        return backend_type
    text = re.sub(r"lead_search_i\d+", "lead_search_iN", re.sub(r"\s+", " ", query or ""))[:120]
    worker = " (parallel worker)" if backend_type == "parallel worker" else ""
    idle = "" if state == "active" else f"<{state}> "
    return f"{application or '-'}{worker}: {idle}{text}"


class ServerCpu:
    """Samples the CPU of the server ``database_url`` names while the block runs; ``seconds`` is per activity.

    The server's processes are the children of its postmaster (the parent of this sampler's own backend, which
    is left out); one seen for the first time counts all it used so far (a backend lives for one session)."""

    def __init__(self, database_url: str) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._conn = psycopg.connect(database_url, autocommit=True)
        self._own = self._conn.info.backend_pid
        self._postmaster = psutil.Process(self._own).ppid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        used: dict[int, float] = {}
        doing: dict[int, str] = {}
        while not self._stop.wait(SAMPLE_SECONDS):
            activity = {
                row[0]: activity_key(*row[1:])
                for row in self._conn.execute(
                    "SELECT pid, backend_type, coalesce(application_name, ''), state, query FROM pg_stat_activity"
                )
            }
            for process in psutil.Process(self._postmaster).children():
                pid = process.pid
                if pid == self._own:
                    continue
                try:
                    times = process.cpu_times()
                    key = activity.get(pid) or " ".join(process.cmdline())  # not in it: "postgres: logger"
                except psutil.Error:  # ended meanwhile
                    continue
                now = times.user + times.system
                spent = now - used.get(pid, 0.0)
                self.seconds[doing.get(pid, key)] += spent / 2
                self.seconds[key] += spent / 2
                used[pid], doing[pid] = now, key

    def __enter__(self) -> ServerCpu:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def report(self, least: float = 0.05) -> list[tuple[float, str]]:
        """(CPU seconds, activity), most first, leaving out those under ``least``."""
        return sorted(((round(s, 2), key) for key, s in self.seconds.items() if s >= least), reverse=True)


def main() -> None:
    from benchmarks.run import OUT, import_benchmark
    from leads_pipeline.lib.runtime import leads_home, prepare_environment, stop_embedded_postgres

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    os.environ.setdefault("LEADS_HOME", str(OUT / "home"))
    embedded = not os.environ.get("DATABASE_URL")
    url = prepare_environment().database_url
    if embedded:  # which the benchmark then takes for a server of its own, whose CPU it cannot read
        del os.environ["DATABASE_URL"]
    try:
        with ServerCpu(url) as cpu:
            result: dict[str, Any] = import_benchmark(args.rows)
    finally:
        if embedded:
            stop_embedded_postgres(leads_home())
    print({k: v for k, v in result.items() if k not in ("results", "warnings")})
    for seconds, key in cpu.report():
        print(f"{seconds:7.2f}  {key}")


if __name__ == "__main__":
    main()
