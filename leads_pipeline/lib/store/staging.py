"""An import's chunks staged in the database by the workers that prepared them (sql/246).

A chunk's merge began with a COPY of its ~30 MB of CSV into the merging backend's temporary table: ~0.22 s of
backend CPU of the ~1.2 s a 50k-row chunk takes, on the one backend every chunk waits for (a 1M-row import's merges
are its serial path). With a pool, each worker COPYs the chunk it prepared into an unlogged table of its own on a
connection of its own (:func:`stage`), beside the merge of earlier chunks, and hands the importing process only the
chunk's counts and problems; the merge fills its temporary table from that table (~0.05 s) and drops it in the
chunk's transaction (:func:`take`). A committed chunk leaves no staged table; a chunk staged but not merged (the
import failed, was killed, or the server crashed, which empties unlogged tables) is staged again by the run that
resumes it, which first drops what the import left (:func:`clear`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Final

from psycopg import sql

from leads_pipeline.lib.fields import MATCH_COLUMNS, STORED_COLUMNS, TYPED_FIELDS
from leads_pipeline.lib.store import liveness
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import Connection

if TYPE_CHECKING:
    from leads_pipeline.lib.prepare import StagedChunk

SCHEMA: Final = "import_staging"
FOLD_COLUMNS: Final = ("tree", "changes")
"""The columns a fold's rows (``StagedChunk.folded_data``) carry after the chunk's own."""

_connections: dict[str, Connection] = {}
"""A worker's connection per database, opened by its first chunk and kept for the next (~10 ms each to open)."""


_STAGED_FIRST: Final = frozenset(MATCH_COLUMNS.values())
"""The staged columns the duplicate lookups read, first in the staging table after its bookkeeping: a scan reads a
row's columns up to the last one it needs, and the lookups scan the chunk ~9 times for keys that came last of ~40
columns (the blind indexes after the lead's fields)."""


def definitions(chunk: StagedChunk) -> sql.Composable:
    """The columns of the merge's temporary table ``stg`` (and ``stg_rows``), and of the chunk's staged tables:
    the same, in the same order, so that the merge copies a staged row as it is (``INSERT ... SELECT *``: 0.05 s
    a 50k-row chunk, where naming the columns, in another order, took 0.11 s)."""
    bookkeeping: list[sql.Composable] = [
        sql.SQL("row_number integer"),
        sql.SQL("lead_id bigint"),
        sql.SQL("dup boolean DEFAULT false"),
        sql.SQL("tree integer"),  # the row number of the fold a row was read into and is merged out of
        sql.SQL("changes boolean"),  # (a row of a fold) writes a value other than an earlier row of the fold
    ]
    fields = [*sorted(STORED_COLUMNS, key=lambda name: name not in _STAGED_FIRST), *chunk.custom_columns]
    typed = (
        sql.SQL("{} {}").format(sql.Identifier(f), sql.SQL(TYPED_FIELDS[f][1] if f in TYPED_FIELDS else "text"))
        for f in fields
    )
    return sql.SQL(", ").join([*bookkeeping, *typed])


def _table(import_id: int, index: int, folds: bool) -> sql.Identifier:
    return sql.Identifier(SCHEMA, f"i{int(import_id)}_c{int(index)}" + ("_folds" if folds else ""))


def _parts(chunk: StagedChunk) -> list[tuple[bool, list[str], bytes]]:
    """The chunk's staged tables: its rows, and on update its folds' rows."""
    parts = [(False, chunk.columns, chunk.data)]
    if chunk.folds:
        parts.append((True, [*chunk.columns, *FOLD_COLUMNS], chunk.folded_data))
    return parts


def _worker_connection(database_url: str) -> Connection:
    conn = _connections.get(database_url)
    if conn is None or conn.closed or conn.broken:
        conn = _connections[database_url] = connect(database_url)
    return conn


def stage(database_url: str, import_id: int, chunk: StagedChunk) -> StagedChunk:
    """Put the chunk's rows in its staged tables (committed) and return it without them (``staged``), for
    :func:`take` to merge. Runs in the worker that prepared it."""
    conn = _worker_connection(database_url)
    with conn.transaction():
        for folds, columns, data in _parts(chunk):
            table = _table(import_id, chunk.index, folds)
            conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(table, definitions(chunk)))
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                table, sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with conn.cursor().copy(statement) as copy:
                copy.write(data)
    return dataclasses.replace(chunk, data=b"", folded_data=b"", staged=True)


def take(conn: Connection, import_id: int, chunk: StagedChunk, tables: tuple[str, str]) -> None:
    """Fill the merge's temporary ``tables`` (the rows', the folds') from the chunk's staged tables and drop
    those, in the merge's transaction: committed with the chunk, or rolled back with it and merged again."""
    for folds, _, _ in _parts(chunk):
        staged = _table(import_id, chunk.index, folds)
        conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(sql.Identifier(tables[folds]), staged))
        conn.execute(sql.SQL("DROP TABLE {}").format(staged))


def clear(conn: Connection, import_id: int) -> None:
    """Drop the staged tables of import ``import_id`` and of every import no process runs: they are merged by
    nothing (a resume stages its chunks again). ``conn`` holds the lock of ``import_id``, or no import runs it."""
    imported = sql.SQL(r"substring(c.relname from '^i(\d+)_')")
    rows = conn.execute(
        sql.SQL(
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = {schema} AND c.relkind = 'r' AND ({imported} = {mine} OR NOT {alive})"
        ).format(
            schema=sql.Literal(SCHEMA),
            imported=imported,
            mine=sql.Literal(str(import_id)),
            alive=liveness.alive(liveness.IMPORT, imported),
        )
    ).fetchall()
    if rows:
        tables = sql.SQL(", ").join(sql.Identifier(SCHEMA, row["relname"]) for row in rows)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(tables))
