"""How long ``leads demo`` takes a newcomer: a fresh leads home (so the embedded PostgreSQL is initialised and
started, and every cache is empty), the whole pipeline on the shipped sample against the sandbox, in a child
process exactly as ``make demo`` runs it. The brief's target: well under 2 minutes on 2 cores.

Run alone: ``.venv/bin/python -m benchmarks.demo``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# set by an in-process benchmark before this one; the demo must find its own fresh database instead
INHERITED = ("DATABASE_URL", "DAGSTER_PG_URL", "DAGSTER_HOME", "LEADS_DAGSTER_STORAGE", "LEADS_CRM_DIR", "LEADS_INBOX")


def demo_benchmark() -> dict[str, Any]:
    """Wall time of ``leads demo`` in a new leads home; the embedded PostgreSQL it started is stopped after."""
    leads = str(Path(sys.executable).with_name("leads"))
    with tempfile.TemporaryDirectory(prefix="leads-demo-bench-") as home:
        env = {k: v for k, v in os.environ.items() if k not in INHERITED} | {"LEADS_HOME": home}
        started = time.perf_counter()
        run = subprocess.run([leads, "demo"], env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        subprocess.run([leads, "db", "stop"], env=env, capture_output=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"leads demo failed ({run.returncode}): {run.stderr.strip()[-500:]}")
    return {"seconds": round(seconds, 1), "fresh_home": True, "cpus": os.cpu_count(), "target_seconds": 120}


if __name__ == "__main__":
    print(json.dumps(demo_benchmark(), indent=2))
