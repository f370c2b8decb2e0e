"""The search rows of an import (``lead_search``, sql/009 and 012): its partition, and the indexes built once it is
loaded.

A trigger copies each new lead's search text and name key into ``lead_search``; the rows of an import go to the
import's own partition, split into segments of a few chunks (sql/241). The segment being filled has no trigram or
name index (maintained row by row, they cost a 1M-row import ~40 s of CPU and ~8 s of its time): once the import
has moved on to the next segment, a side connection builds the finished one's indexes in bulk while the merges go
on. When the last chunk is in, the import builds the partition's trigram, sort and name indexes in one ``CREATE
INDEX`` each, side by side (the segments' still missing, then the partition's, which attaches them), then vacuums
and analyzes it (the visibility map makes a walk of the covering sort index an index-only scan; the statistics let
the planner weigh the trigram index). Until then (or after an import that died half-way) a search reads the rows of
the segments without indexes as they are, and a lookup by name joins the partition's rows whole: slower, never
wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from psycopg import sql

from leads_pipeline.lib.store.db import key_column
from leads_pipeline.lib.store.lists import Connection

BUILD_MEMORY = "256MB"
"""maintenance_work_mem for the bulk index build. The trigram build does not gain from more: a 1M-row partition's
trigram index took 14.1 / 14.5 / 14.5 s with 64 MB / 256 MB / 1 GB, 8.4 s with a parallel worker at either
size; most of it is GIN gathering the 62.5M trigrams, not memory. The three indexes build at once (one connection
each, sql/106): up to three times this at the end of a large import, in principle; measured (the private memory of
every server process summed, sampled every 50 ms), the three builds peaked at 113 MB for 200k leads and 257 MB for
1M. A third of this each (85 MB) saved 43 MB for 200k and 45 MB for 1M, but the 200k builds took 8.2 s instead of
6.0 s (three runs each; 1M: 32-33 s either way): PostgreSQL plans a build only as many parallel workers as leave
each participant 32 MB of it (one worker at 85 MB, two at 256 MB)."""


SEARCHED_FIELDS: Final = frozenset({"first_name", "last_name", "email", "company", "title"})
"""The fields a lead's search row is made of (``lead_search_text``, its last name and name key): a bulk edit of one
of them rebuilds the rows with :func:`search_rows_rebuilt`."""


@contextmanager
def search_rows_rebuilt(conn: Connection) -> Iterator[list[int]]:
    """In a transaction that rewrites many leads' searched fields or lists: the per-row trigger is off while the body
    runs, and the search rows of the leads the body lists in the yielded list are rebuilt at its end in two
    set-based statements (sql/051; the trigger costs ~110 us a lead, 17 of the 23 s of moving 150k leads)."""
    changed: list[int] = []
    conn.execute("SELECT set_config('leads.search_rows_later', 'on', true)")
    yield changed
    conn.execute("SELECT set_config('leads.search_rows_later', 'off', true)")
    conn.execute("SELECT lead_search_rebuild(%s::bigint[])", (changed,))


BUILT = ("completed", "undone")
"""The states of an import whose partition has its indexes: the build ends every import that reached its last
chunk (an undone one's partition is empty besides). One still running, or stopped half-way, has none yet."""


def partitions_of_lists(conn: Connection, list_ids: list[int]) -> tuple[list[int], list[int]]:
    """The imports into these lists whose partitions have their indexes built, and those whose partitions are
    still being filled."""
    built: list[int] = []
    filling: list[int] = []
    for row in conn.execute("SELECT id, status FROM imports WHERE list_id = ANY(%s) ORDER BY id", (list_ids,)):
        (built if row["status"] in BUILT else filling).append(int(row["id"]))
    return built, filling


def rows_of_imports(imports: list[int]) -> sql.Composable:
    """The condition on ``lead_search x`` naming the partitions of ``imports`` and the one for no import, so that
    the planner reads only those. An empty array is left out: with ``import_id = ANY('{}')`` in it, the planner
    prunes nothing and reads every partition."""
    if not imports:
        return sql.SQL("x.import_id IS NULL")
    return sql.SQL("(x.import_id = ANY({}) OR x.import_id IS NULL)").format(sql.Literal(imports))


def leads_by_name(conn: Connection, list_id: int, wanted: sql.Composable) -> sql.Composable:
    """A query of the ``lead_id`` of the list's search rows whose ``name_key`` is among those ``wanted`` selects
    (sql/012), deleted leads included: by index in the partitions whose indexes are built (finished imports, and
    leads made otherwise), by one hash join in those of imports into the list still being filled (one running, or
    one that stopped half-way), which have none yet."""
    built, filling = partitions_of_lists(conn, [list_id])
    parts = [
        sql.SQL("SELECT x.lead_id FROM lead_search x WHERE x.list_id = {} AND {} AND {} = ANY(ARRAY({}))").format(
            sql.Literal(list_id), rows_of_imports(built), key_column("name_key", "x"), wanted
        )
    ]
    if filling:
        parts.append(
            sql.SQL(
                "SELECT x.lead_id FROM lead_search x JOIN (SELECT DISTINCT w.name_key FROM ({}) w) w"
                " ON w.name_key = x.name_key WHERE x.list_id = {} AND x.import_id = ANY({})"
            ).format(wanted, sql.Literal(list_id), sql.Literal(filling))
        )
    return sql.SQL(" UNION ALL ").join(parts)


def create_partition(conn: Connection, import_id: int) -> None:
    """The import's partition of ``lead_search`` (idempotent; must exist before the import inserts a lead)."""
    conn.execute("SELECT lead_search_create_partition(%s)", (import_id,))


PARTITION_INDEXES: Final = ("trgm", "sort", "name")
"""The indexes of an import's partition (sql/106), each built by :func:`build_index` on a connection of its own,
side by side: one after another, the sort and name indexes (~1.3 s of CPU each for 1M leads) waited for the trigram
index, at the end of the import, when little else was left to share the cores with."""


def build_index(conn: Connection, import_id: int, index: str) -> None:
    """Build one of the import's :data:`PARTITION_INDEXES` in bulk (idempotent: a re-run of a finished build is a
    no-op). Runs in the caller's transaction; a build interrupted by a crash leaves nothing and is redone by a re-run.

    PostgreSQL may add parallel workers to the builds. For 1M leads, alone: trigram 15.0 s on one core, 9.0 s
    with a worker; sort index 2.2 s, 1.6 s. Beside the import's checks (~11 CPU-s) the whole still ends ~2 s
    sooner with workers than without (16.1 s against 18.0 s, three runs each), though the cores are then shared."""
    conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (BUILD_MEMORY,))
    conn.execute("SELECT lead_search_build_partition(%s, %s)", (import_id, index))


SEGMENT_ROWS: Final = 200_000
"""About how many rows of an import make one segment of its partition (sql/241): whole chunks, so a chunk's rows
are in one segment. A segment's indexes are built (:func:`build_segment`) while the import merges the next ones,
on a side connection, on the core the merges leave mostly idle; the import's end builds only the last segment's."""


def segment_of(chunk_index: int, chunk_rows: int) -> int:
    """The segment of the import's partition that the chunk's search rows go to (the same on a re-run)."""
    return chunk_index // max(1, SEGMENT_ROWS // chunk_rows)


def open_segment(conn: Connection, import_id: int, segment: int) -> None:
    """In the transaction that merges a chunk, before it inserts leads: their search rows go to ``segment``, made
    if it is not there yet."""
    conn.execute("SELECT lead_search_open_segment(%s, %s)", (import_id, segment))


def build_segment(conn: Connection, import_id: int, segment: int) -> None:
    """Build the segment's :data:`PARTITION_INDEXES` in bulk, one transaction each (idempotent; a build killed
    half-way leaves nothing, and the import's end builds what is missing). No parallel workers: the build runs
    while the import merges, on the other core."""
    for index in PARTITION_INDEXES:
        with conn.transaction():
            conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (BUILD_MEMORY,))
            conn.execute("SELECT set_config('max_parallel_maintenance_workers', '0', true)")
            conn.execute("SELECT lead_search_build_segment(%s, %s, %s)", (import_id, segment, index))


def vacuum_partition(conn: Connection, import_id: int) -> None:
    """VACUUM (ANALYZE) the import's partition; ``conn`` must be in autocommit mode (VACUUM runs outside a
    transaction). Cheap on a freshly loaded partition (1M rows: well under a second of CPU)."""
    conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(f"lead_search_i{int(import_id)}")))
