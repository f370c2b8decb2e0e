"""Reading stored leads back as DataFrames, fast: ``COPY ... TO STDOUT`` in CSV, parsed by pyarrow.

Fetching a million leads as Python rows takes tens of seconds; the same rows as one CSV stream parsed by pyarrow
take a few. The stream is parsed block by block, so memory stays bounded whatever the batch size.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from leads_pipeline.lib.fields import TYPED_FIELDS
from leads_pipeline.lib.prepare import STORED_COLUMNS
from leads_pipeline.lib.privacy.crypto import Keyring, open_frame
from leads_pipeline.lib.store.batches import live_batch_leads
from leads_pipeline.lib.store.lists import Connection

BLOCK_BYTES = 32 * 1024 * 1024
"""The stream is parsed in blocks of about this size: each yields one frame, so memory stays bounded."""


def _to_frame(table: pa.Table, ring: Keyring | None) -> pd.DataFrame:
    frame = table.to_pandas(types_mapper={pa.large_string(): pd.StringDtype("pyarrow")}.get)
    for name, (dtype, _) in TYPED_FIELDS.items():
        if name in frame.columns:
            frame[name] = frame[name].astype(dtype)
    return open_frame(frame, ring).set_index("id")  # COPY bypasses the connection's loaders


ROW_VERSION = "row_version"
"""The column of :func:`import_leads_between`'s frames that holds each lead's row version: the transaction that wrote
its stored row (PostgreSQL's ``xmin``). Any later change of the lead (an update, a delete, a restore) stores a row
written by another transaction: a lead whose row version is still the one read is unchanged since."""


def batch_lead_frames(
    conn: Connection, batch_id: str, columns: Sequence[str] = STORED_COLUMNS, *, ids: Iterable[int] | None = None
) -> Iterator[pd.DataFrame]:
    """The live leads of a batch (``columns``, indexed by lead id), one frame per block read; with ``ids``, only
    those of them. Ask only for the columns you read: a sealed column costs an AES-GCM opening per value."""
    _known(columns)
    select: sql.Composable = live_batch_leads(batch_id, columns)
    if ids is not None:  # a literal array ('{1,2}'), parsed as one value: a COPY takes no parameters
        wanted = sql.Literal("{" + ",".join(str(int(i)) for i in ids) + "}")
        select = sql.SQL("SELECT m.* FROM ({}) m WHERE m.id = ANY({}::bigint[])").format(select, wanted)
    return _frames(conn, select, columns)


def import_leads_between(
    conn: Connection,
    batch_id: str,
    after: int,
    upto: int,
    columns: Sequence[str] = STORED_COLUMNS,
    *,
    ring: Keyring | None = None,
) -> Iterator[pd.DataFrame]:
    """The live leads the batch's import created with ids in (``after``, ``upto``] (``columns`` and their
    :data:`ROW_VERSION`, opened under ``ring``, else the keyring in force), one frame per block read: the leads
    of the chunks it merged in between. They are found by the primary key (a range at its end): the import's index
    lists all its leads so far, each read from the table and filtered by id, every chunk (during an import the
    planner's statistics are the table's before it); ``IS NOT DISTINCT FROM`` keeps that index out of the plan."""
    _known(columns)
    selected = sql.SQL(", ").join(sql.Identifier("l", name) for name in ("id", "xmin", *columns))
    select = sql.SQL(
        "SELECT {cols} FROM leads l WHERE l.id > {after} AND l.id <= {upto} AND l.deleted_at IS NULL"
        " AND l.created_by_import IS NOT DISTINCT FROM (SELECT i.id FROM imports i WHERE i.batch_id = {batch})"
    ).format(cols=selected, after=sql.Literal(after), upto=sql.Literal(upto), batch=sql.Literal(batch_id))
    return _frames(conn, select, columns, versions=True, ring=ring)


def batch_lead_versions(conn: Connection, batch_id: str) -> pd.Series:
    """The :data:`ROW_VERSION` of each live lead of the batch, by lead id: two arrays in one row, as a million COPY
    rows cost this process ~1.3 s of reading them one by one (the stored-lead check's whole end takes ~0.3 s)."""
    query = sql.SQL("SELECT array_agg(m.id) AS ids, array_agg(m.xmin::text::bigint) AS versions FROM ({}) m").format(
        live_batch_leads(batch_id, ["xmin"])
    )
    with conn.transaction(), conn.cursor(binary=True) as cursor:
        # one process: it runs beside the import's index builds, and a parallel plan costs more CPU in all
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        row = cursor.execute(query).fetchone()
    ids, versions = (row["ids"], row["versions"]) if row is not None and row["ids"] is not None else ([], [])
    return pd.Series(
        np.array(versions, dtype=np.int64), index=pd.Index(np.array(ids, dtype=np.int64), name="id"), name=ROW_VERSION
    )


def newest_lead_id(conn: Connection) -> int:
    """The highest lead id so far (0 for none): the leads an import goes on to create come after it."""
    row = conn.execute("SELECT coalesce(max(id), 0) AS id FROM leads").fetchone()
    return int(row["id"]) if row is not None else 0


def _known(columns: Sequence[str]) -> None:
    unknown = sorted(set(columns) - set(STORED_COLUMNS))
    if unknown:
        raise ValueError(f"not stored lead columns: {', '.join(unknown)}")


def _frames(
    conn: Connection,
    select: sql.Composable,
    columns: Sequence[str],
    *,
    versions: bool = False,
    ring: Keyring | None = None,
) -> Iterator[pd.DataFrame]:
    """The rows of ``select`` (the lead's id, its row version when ``versions``, then ``columns``) as frames."""
    query = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(select)
    numeric = {"integer": pa.int64(), "numeric": pa.float64()}
    leading = {"id": pa.int64()} | ({ROW_VERSION: pa.int64()} if versions else {})
    types = leading | {
        name: numeric[TYPED_FIELDS[name][1]] if name in TYPED_FIELDS else pa.large_string() for name in columns
    }
    options = {
        "read_options": pacsv.ReadOptions(column_names=list(types), use_threads=False),
        "parse_options": pacsv.ParseOptions(newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    }
    # COPY TO sends a row per message: the rows are gathered into blocks of whole rows, each parsed on its own.
    # Fed to pyarrow's streaming reader as a file, the rows were cut and copied again to fill its reads: ~1 s
    # more of this process for 1M leads (and BytesIO's writes cost less than joining a list of the rows).
    block = io.BytesIO()
    with conn.cursor().copy(query) as copy:
        for row in copy:
            block.write(row)
            if block.tell() >= BLOCK_BYTES:
                yield _to_frame(pacsv.read_csv(pa.py_buffer(block.getbuffer()), **options), ring)
                block = io.BytesIO()
    if block.tell():
        yield _to_frame(pacsv.read_csv(pa.py_buffer(block.getbuffer()), **options), ring)
