"""The processes that prepare an import's chunks, and the server they fork from.

Workers fork from a forkserver that has imported the preparation code once (pandas, pyarrow, pandera,
phonenumbers: ~2 s). This module imports none of that, so a caller can start the server first thing and let it
boot while it does its own start-up; an import in the same process then finds it running.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext
from pathlib import Path

from leads_pipeline.lib.limits import cpu_count, memory_bytes

DEFAULT_CHUNK_ROWS = 50_000
SHORT_ROW_BYTES = 20
"""Shorter than nearly any lead file's rows (an email alone is longer): a file smaller than this per row of a
chunk is a chunk or so, prepared in the importing process. Starting workers for it made the first import of the
41-row demo file take 0.95 s instead of 0.15 s (the forkserver's imports, then waiting for them to shut down)."""
PRELOAD = ["leads_pipeline.lib.importer"]
"""What the forkserver imports for its workers: the module of their task (``importer._prepare``), with the
preparation and the database driver the workers stage their chunks with (``store.staging``). A worker forked
from a server that had imported the preparation only imported the rest with its first chunk (~0.15 s of CPU each,
the first chunk waiting)."""
WORKERS_MEMORY = 2 * 1024**3
"""Below this much memory (a container's limit: ``limits``) the importing process prepares the chunks itself. Each
worker holds ~300 MB: under a 1.5 GB limit a 1M-row import with two workers was OOM-killed ("Killed", exit 137,
near its end); without them its processes peaked at ~1 GB and it completed."""


def worker_count(requested: int, chunk_rows: int, path: Path) -> int:
    """The worker processes to prepare ``path``'s chunks: ``requested``, or when that is 0 one per core this process
    may use (at most two; ``limits``: in a container given one core, two workers took turns on it), and none
    for a file of at most about a chunk (under :data:`SHORT_ROW_BYTES` a row), which the importing process
    prepares before workers would have started, nor under :data:`WORKERS_MEMORY`."""
    if requested:
        return requested
    if not path.is_file() or path.stat().st_size < chunk_rows * SHORT_ROW_BYTES:
        return 1  # (a missing file is refused by the inspection, with its one-line error)
    if memory_bytes() < WORKERS_MEMORY:
        return 1
    return min(2, cpu_count())


def worker_context() -> ForkServerContext:
    """The multiprocessing context of chunk workers. Forkserver, not fork: a forked child would inherit (and on
    exit close) the parent's database connection."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_worker_server() -> None:
    """Start the forkserver now, without waiting for it: its imports then overlap with the caller's (``leads
    import`` loads Dagster and starts a run meanwhile, ~4 s), and the import's first chunk does not wait for them."""
    worker_context()
    forkserver.ensure_running()


def _start_worker(importer: int) -> None:
    """A worker leaves Ctrl-C to the importing process, which stops the pool: a terminal sends SIGINT to the
    whole process group, and each worker printed its own KeyboardInterrupt traceback before the import's one line.
    And it dies with the importing process (``_exit_with``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(importer,), name="exit-with-importer", daemon=True).start()


def _exit_with(importer: int) -> None:
    """End this worker once process ``importer`` has ended. A worker's parent is the forkserver, not the importing
    process, and it waits on a queue that it holds both ends of, so nothing else tells it: ``kill -9`` of ``leads
    import`` left both workers waiting for good, and the forkserver with them (it ends when the last process
    holding its "alive" pipe does). Waits on a pidfd (readable once the process has ended), not on a polled pid
    that could be reused."""
    try:
        pidfd = os.pidfd_open(importer)
    except ProcessLookupError:  # ended already
        os._exit(1)
    select.select([pidfd], [], [])
    os._exit(1)


def start_pool(workers: int) -> ProcessPoolExecutor | None:
    """``workers`` chunk workers (none for 1), started now: forking them from the server (whose imports take ~2 s
    unless :func:`start_worker_server` began them earlier) overlaps with the caller's inspection of the file
    instead of delaying the first chunk."""
    if workers <= 1:
        return None
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=worker_context(), initializer=_start_worker, initargs=(os.getpid(),)
    )
    for _ in range(workers):
        pool.submit(os.getpid)
    return pool
