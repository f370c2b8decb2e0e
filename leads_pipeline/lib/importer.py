"""Importing a lead file into a list: the one code path behind `leads import`, the drop-folder sensor's runs and
the benchmark.

The file is inspected whole first (refused with a one-line error if it cannot be imported), then streamed in
chunks: each chunk is prepared (mapped, normalized, validated, de-duplicated) in a worker process while the
previous one is merged into PostgreSQL, so both cores work and memory stays bounded by a few chunks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from leads_pipeline.lib.countries import check_default_region
from leads_pipeline.lib.csvfile import (
    ChunkRange,
    FileLayout,
    RawChunk,
    chunk_ranges,
    first_chunk,
    inspect_file,
    iter_chunks,
    read_range,
)
from leads_pipeline.lib.errors import INTERRUPTED, PermanentError
from leads_pipeline.lib.mapping import MappingSuggestion, apply_overrides, suggest_mapping
from leads_pipeline.lib.prepare import DedupeKey, OnDuplicate, StagedChunk, prepare_chunk, stage_chunk
from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.privacy.crypto import Sealer
from leads_pipeline.lib.runtime import os_user
from leads_pipeline.lib.store import imports as store
from leads_pipeline.lib.store import liveness, search_index, staging
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import ensure_list, get_list
from leads_pipeline.lib.workers import DEFAULT_CHUNK_ROWS, start_pool, worker_count


@dataclass(frozen=True)
class ImportOptions:
    """How to import a file: what a user can choose on the command line or in the run config."""

    on_duplicate: OnDuplicate = "skip"
    mapping_overrides: Mapping[str, str | None] = field(default_factory=dict)
    default_region: str = "US"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    workers: int = 0  # processes preparing chunks; 0 = one per core, 1 = in this process
    create_list: bool = False  # a drop folder named after a list that does not exist yet creates it

    def __post_init__(self) -> None:
        check_default_region(self.default_region)

    def as_dict(self) -> dict[str, Any]:
        return {"on_duplicate": self.on_duplicate, "default_region": self.default_region}


@dataclass(frozen=True)
class ImportPlan:
    """What a dry run reports: the file's layout, the mapping that would be used, and sample problems."""

    layout: FileLayout
    suggestion: MappingSuggestion
    mapping: dict[str, str | None]
    sample_problems: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "file": str(self.layout.path),
            "totalRows": self.layout.total_rows,
            "encoding": self.layout.encoding,
            "delimiter": self.layout.delimiter,
            "headerLine": self.layout.header_line,
            "mapping": self.mapping,
            "suggestions": [
                {
                    "column": s.column,
                    "field": s.field,
                    "confidence": round(s.confidence, 2),
                    "reason": s.reason,
                }
                for s in self.suggestion.columns
            ],
            "sampleErrors": self.sample_problems,
        }


ProgressCallback = Callable[[int, int], None]
"""Called after each committed chunk with (records processed, total records)."""
AfterMerge = Callable[[Executor | None], None]
"""Called after each committed chunk with the import's worker pool (None without one): work on the committed leads
submitted to it runs on the workers, which the merges keep waiting (one merging backend), not in the tail. The
pool is shut down after the last chunk once that work is done, while the index builds run."""
StageIn = tuple[str, int]
"""Where a worker stages the chunk it prepared: the database URL and the import's id (``store.staging``)."""
Alongside = Callable[[], None]
"""Work on the stored leads (the asset's checks) done while the search index builds: for a million leads the build
takes ~11 s alone and the checks ~8 s alone; side by side both are done in ~16 s."""


def plan_import(path: Path, options: ImportOptions, *, dedupe: DedupeKey = "email", preview: bool = True) -> ImportPlan:
    """Inspect a file and work out its mapping without writing anything (also the first step of every import).

    ``preview`` prepares the first 200 rows for the sample problems a dry run shows; an import leaves it out (its
    chunks find every problem, and the preview's phone parsing costs ~0.3 s before the first chunk starts).
    """
    layout = inspect_file(path)
    sample = first_chunk(layout, limit=200)
    suggestion = suggest_mapping(layout.headers, sample.rows)
    mapping = apply_overrides(suggestion, options.mapping_overrides)
    if not preview:
        return ImportPlan(layout, suggestion, mapping, [])
    preview_chunk = prepare_chunk(
        sample,
        layout.headers,
        mapping,
        dedupe=dedupe,
        on_duplicate=options.on_duplicate,
        default_region=options.default_region,
    )
    problems = [
        {
            "row": p.row_number,
            "column": p.column,
            "value": p.value,
            "reason": p.reason,
            "severity": p.severity,
        }
        for p in preview_chunk.problems[:20]
    ]
    return ImportPlan(layout, suggestion, mapping, problems)


def _prepare(
    raw: RawChunk | ChunkRange,
    headers: tuple[str, ...],
    mapping: dict[str, str | None],
    dedupe: DedupeKey,
    on_duplicate: OnDuplicate,
    default_region: str,
    sealer: Sealer,
    stage_in: StageIn | None = None,
) -> StagedChunk:
    if isinstance(raw, ChunkRange):
        raw = read_range(raw)
    chunk = stage_chunk(
        prepare_chunk(raw, headers, mapping, dedupe=dedupe, on_duplicate=on_duplicate, default_region=default_region),
        sealer,
    )
    return chunk if stage_in is None else staging.stage(*stage_in, chunk)


def _prepared_chunks(
    layout: FileLayout,
    mapping: dict[str, str | None],
    options: ImportOptions,
    dedupe: DedupeKey,
    start_chunk: int,
    pool: ProcessPoolExecutor | None,
    workers: int,
    stage_in: StageIn,
) -> Iterator[StagedChunk]:
    """Prepared chunks in file order; with a pool, one chunk per worker is prepared ahead of the merge, and staged
    in the database by its worker (``stage_in``: ``store.staging``).

    Workers read their chunk's byte range themselves when the file can be cut so; otherwise this process parses
    the records and ships them."""
    ranges = chunk_ranges(layout, options.chunk_rows, start_chunk=start_chunk)
    raw_chunks: Iterable[RawChunk | ChunkRange] = (
        ranges if ranges is not None else iter_chunks(layout, options.chunk_rows, start_chunk=start_chunk)
    )
    # The keys are resolved here and shipped with each chunk: workers seal (AES-GCM) and blind-index the PII, so
    # the merge only copies sealed values.
    args = (layout.headers, mapping, dedupe, options.on_duplicate, options.default_region, crypto.sealer())
    if pool is None:
        for raw in raw_chunks:
            yield _prepare(raw, *args)
        return
    pending: list[Future[StagedChunk]] = []
    for raw in raw_chunks:
        pending.append(pool.submit(_prepare, raw, *args, stage_in))
        if len(pending) > workers:
            yield pending.pop(0).result()
    for future in pending:
        yield future.result()


def _build_index(database_url: str, import_id: int, index: str) -> None:
    with connect(database_url) as conn, conn.transaction():
        search_index.build_index(conn, import_id, index)


class _SegmentBuilds:
    """The indexes of the import's finished segments (``search_index.build_segment``), built one segment after
    another on a side connection while the import merges the next chunks."""

    def __init__(self, database_url: str, import_id: int) -> None:
        self._database_url = database_url
        self._import_id = import_id
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search-segment")
        self._builds: list[Future[None]] = []

    def _build(self, segment: int) -> None:
        with connect(self._database_url) as conn:
            search_index.build_segment(conn, self._import_id, segment)

    def submit(self, segment: int) -> None:
        self._builds.append(self._builder.submit(self._build, segment))

    def stop(self) -> None:
        """On a failure: wait for the build running (a re-run could build the same index), begin no other."""
        self._builder.shutdown(cancel_futures=True)

    def finish(self) -> None:
        """Wait for the build running; those not begun are left to the partition's build, whose three indexes
        build side by side (a failed one too: its error is raised here all the same)."""
        self._builder.shutdown(cancel_futures=True)
        for build in self._builds:
            if not build.cancelled():
                build.result()


def _build_search_index(database_url: str, import_id: int, segments: _SegmentBuilds) -> None:
    """The partition's indexes, side by side on connections of their own (they only share a lock that lets each
    other build), once the segment being built is, then its vacuum, which waits for them all."""
    segments.finish()
    indexes = search_index.PARTITION_INDEXES
    with ThreadPoolExecutor(max_workers=len(indexes), thread_name_prefix="search-index") as builders:
        list(builders.map(functools.partial(_build_index, database_url, import_id), indexes))
    with connect(database_url, autocommit=True) as maintenance:
        search_index.vacuum_partition(maintenance, import_id)


def failure_reason(exc: BaseException) -> str:
    """What an import's status says of what stopped it. An interruption carries no message: a run terminated
    from the Dagster UI read 'DagsterExecutionInterruptedError: ', Ctrl-C on ``leads import`` 'KeyboardInterrupt: '."""
    if isinstance(exc, Exception):
        return f"{type(exc).__name__}: {exc}"
    return INTERRUPTED


def run_import(
    database_url: str,
    *,
    batch_id: str,
    path: Path,
    list_name: str,
    options: ImportOptions,
    user: str | None = None,
    on_progress: ProgressCallback | None = None,
    after_merge: AfterMerge | None = None,
    alongside_index_build: Alongside | None = None,
    expected_sha256: str | None = None,
    dagster_run_id: str | None = None,
) -> dict[str, Any]:
    """Import ``path`` into the list as batch ``batch_id``; resumable; returns the import's status document.

    Re-running a batch continues after its last committed chunk; a completed batch is returned as it is. The
    import's lock (``store.claim_import``) is held from the moment its record is written or set back to
    processing until its end is: a process killed in between leaves it processing, and it reads as interrupted.
    A resume takes it before reading the file (seconds for a large one), as soon as it can: until then the import
    reads interrupted. ``dagster_run_id``: the Dagster run this import runs in, recorded on the import with its
    lock: the drop folder ends that run when it finds the import interrupted, not a run on its way to the lock
    (``inbox_sensor``).
    ``after_merge`` is called after each chunk commits (other sessions can read its leads from then on) with the
    import's workers, or None without.
    ``alongside_index_build`` is called once when every lead is stored: while the import's search index builds,
    or at once when the batch was already complete. ``expected_sha256``: the content the import was requested
    for (the drop folder's); a file saved over since is refused before anything is written.
    """
    owner = user or os.environ.get("LEADS_USER") or os_user()
    with connect(database_url) as conn:
        lead_list = (
            ensure_list(conn, list_name, owner=owner) if options.create_list else get_list(conn, list_name, None)
        )
        existing = store.import_for_batch(conn, batch_id)
    if existing is not None and existing["list_id"] != lead_list.id:
        # resuming or reporting the other list's import here would tell this list's run that it imported rows
        raise PermanentError(f"{path}: batch {batch_id} is an import into another list, not into {lead_list.name!r}")
    if existing is not None and existing["status"] in ("completed", "undone"):
        if alongside_index_build is not None:
            alongside_index_build()
        with connect(database_url) as conn:
            return store.import_status(conn, existing["id"])
    workers = worker_count(options.workers, options.chunk_rows, path)
    keeper = connect(database_url, autocommit=True)  # its session holds the import's lock until the end
    pool: ProcessPoolExecutor | None = None
    try:
        if existing is not None:  # a resume: held from now, while the file is read again, not from after that
            store.claim_import(keeper, int(existing["id"]), dagster_run_id)
        pool = start_pool(workers)
        plan = plan_import(path, options, dedupe=lead_list.dedupe, preview=False)
        layout = plan.layout
        if expected_sha256 is not None and layout.sha256 != expected_sha256:
            raise PermanentError(
                f"{path}: the file changed after this import was requested (sha256 {expected_sha256[:10]}, now "
                f"{layout.sha256[:10]}); nothing was written: the drop folder imports the new content once it is stable"
            )
        chunk_rows = existing["chunk_rows"] if existing is not None else options.chunk_rows
        options = dataclasses.replace(options, chunk_rows=chunk_rows)
        with keeper.transaction():
            record = store.start_import(
                keeper,
                batch_id=batch_id,
                list_id=lead_list.id,
                file_path=str(path),
                sha256=layout.sha256,
                size=layout.size,
                mapping=plan.mapping,
                options=options.as_dict(),
                dialect=layout.as_dict(),
                chunk_rows=chunk_rows,
                total_rows=layout.total_rows,
                user=owner,
            )
            store.claim_import(keeper, int(record["id"]), dagster_run_id)  # else not started: another process runs it
        import_id = int(record["id"])
        segments = _SegmentBuilds(database_url, import_id)
        try:
            mapping = plan.mapping
            if existing is not None and dict(record["mapping"]) != mapping:
                if int(record["chunks_done"]) > 0:
                    raise PermanentError(
                        f"{path}: import {import_id} stopped after {int(record['processed_rows']):,} rows with another "
                        f"mapping; rerun it with the same mapping, or undo it (`leads imports undo {import_id}`) first"
                    )
                with connect(database_url) as conn:  # nothing merged yet: the new mapping replaces the old one
                    conn.execute("UPDATE imports SET mapping = %s WHERE id = %s", (json.dumps(mapping), import_id))
            staging.clear(keeper, import_id)  # what it staged in a run that stopped (staged again), and dead imports
            with connect(database_url) as conn:
                store.open_merge_session(conn)
                processed = int(record["processed_rows"])
                chunks = _prepared_chunks(
                    layout,
                    mapping,
                    options,
                    lead_list.dedupe,
                    int(record["chunks_done"]),
                    pool,
                    workers,
                    (database_url, import_id),
                )
                filling: int | None = None  # the segment the last chunk went to
                for chunk in chunks:
                    segment = search_index.segment_of(chunk.index, chunk_rows)
                    if filling is not None and segment != filling:
                        segments.submit(filling)
                    filling = segment
                    with conn.transaction():
                        search_index.open_segment(conn, import_id, segment)
                        counts = store.merge_chunk(
                            conn,
                            import_id=import_id,
                            batch_id=batch_id,
                            list_id=lead_list.id,
                            chunk=chunk,
                            dedupe=lead_list.dedupe,
                            on_duplicate=options.on_duplicate,
                        )
                    if counts is not None:
                        if after_merge is not None:
                            after_merge(pool)
                        processed += chunk.record_count
                        if on_progress is not None:
                            on_progress(processed, layout.total_rows)
                if pool is not None:  # its workers' memory is not needed for the rest, once their work is done
                    pool.shutdown(wait=False)
                # The builds run in connections of their own (threads waiting on the server) while this thread
                # does the caller's work; leaving the block waits for them, whichever finishes first.
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="search-index") as builder:
                    built = builder.submit(_build_search_index, database_url, import_id, segments)
                    if alongside_index_build is not None:
                        alongside_index_build()
                    built.result()
                with conn.transaction():
                    store.finish_import(conn, import_id)
                return store.import_status(conn, import_id)
        except BaseException as exc:
            segments.stop()
            with connect(database_url) as conn:
                store.fail_import(conn, import_id, failure_reason(exc))
            if pool is not None:  # its workers' chunks staged ahead of the merge are dropped once none stages more
                pool.shutdown(cancel_futures=True)
                with contextlib.suppress(psycopg.Error):  # (the database gone: dropped when an import next starts)
                    staging.clear(keeper, import_id)
            raise
    finally:
        liveness.let_go(keeper)
        if pool is not None:
            pool.shutdown(cancel_futures=True)
