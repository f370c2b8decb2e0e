"""Whether a CRM sync run, an enrichment job or an import is still being worked on.

The process running one holds a session-level advisory lock keyed on it (``claim``) for as long as it runs; the
server releases it when the session ends, however the process ended (SIGKILL, a power cut, Ctrl-C). A run
recorded as running whose lock is free was interrupted: no row can say so itself, since the process that would
have written the end is gone. Readers compute that at read time (``alive``), so nothing needs to notice first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import Any, Final

import psycopg
from psycopg import sql

Connection = psycopg.Connection[dict[str, Any]]

SYNC_RUN: Final = 0x1EAD1
"""The lock namespace of ``crm_sync_runs`` ids."""
ENRICHMENT_JOB: Final = 0x1EAD2
"""The lock namespace of ``enrichment_jobs`` ids."""
IMPORT: Final = 0x1EAD3
"""The lock namespace of ``imports`` ids."""
ENRICHMENT_STAGE: Final = 0x1EAD4
"""The lock namespace of a batch's paid stages (its id), or of all of them under a monthly budget, held by the run
whose stage is working (``defs/enrichment/assets.py: one_run_at_a_time``)."""


def status(recorded: str, running: Collection[str], alive: bool) -> str:
    """What a sync run's or job's ``recorded`` status is now: one of its ``running`` statuses while no process
    holds its lock (``alive`` false) is ``interrupted``: it will never end on its own."""
    return "interrupted" if recorded in running and not alive else recorded


def claim(conn: Connection, kind: int, key: object) -> bool:
    """Take the lock of run ``key`` of ``kind`` for the session of ``conn`` (until it closes); False when another
    session holds it: the run is alive elsewhere."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s::text)) AS claimed", (kind, str(key))).fetchone()
    return bool(row and row["claimed"])


def await_claim(conn: Connection, kind: int, key: object, timeout_s: float) -> bool:
    """``claim``, waiting up to ``timeout_s`` for the session holding the lock to let it go (the process handing
    the run over to this one); False when it did not."""
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{int(timeout_s * 1000)}ms")))
    try:
        conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s::text))", (kind, str(key)))
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        conn.execute("RESET lock_timeout")
    return True


def wait_for(conn: Connection, kind: int, key: object) -> None:
    """Take the lock of ``key`` of ``kind`` for the session of ``conn``, waiting as long as another session holds
    it (an interrupt cancels the wait)."""
    conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s::text))", (kind, str(key)))


def holder(conn: Connection, kind: int, key: object) -> str | None:
    """The ``application_name`` of the session holding the lock of ``key`` of ``kind`` (None: free or unnamed)."""
    query = sql.SQL(
        "SELECT a.application_name AS name FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a USING (pid)"
        " WHERE {}"
    ).format(_matching(kind, sql.Placeholder(), granted=True))
    row = conn.execute(query, (str(key),)).fetchone()
    return (row["name"] or None) if row else None


def awaited(conn: Connection, kind: int, key: object) -> bool:
    """Whether a session waits for the lock of run ``key`` of ``kind`` (``await_claim``)."""
    query = sql.SQL("SELECT {} AS waiting").format(_lock(kind, sql.Placeholder(), granted=False))
    row = conn.execute(query, (str(key),)).fetchone()
    return bool(row and row["waiting"])


def release(conn: Connection, kind: int, key: object) -> None:
    """Let go of the lock of run ``key`` of ``kind`` that ``conn``'s session holds (handed over to the session
    waiting for it, if one is)."""
    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s::text))", (kind, str(key)))


def let_go(conn: Connection) -> None:
    """Close ``conn`` having let go of every lock its session holds. The server releases a closed session's locks
    as its backend exits, after ``close`` has returned: a process claiming the run at once (a resume, the drop
    folder's next tick) found it still held, the run still alive elsewhere. A broken session is closed as it is
    (its backend is ending, its locks with it)."""
    with contextlib.suppress(psycopg.Error):
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock_all()")
    conn.close()


def alive(kind: int, key: sql.Composable) -> sql.Composable:
    """A SQL condition: some session holds the lock of the run whose id is the expression ``key``."""
    return _lock(kind, key, granted=True)


def _lock(kind: int, key: sql.Composable, *, granted: bool) -> sql.Composable:
    """A SQL condition: a session holds (``granted``) or waits for the lock of the run whose id is ``key``."""
    matching = _matching(kind, key, granted=granted)
    return sql.SQL("EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE {})").format(matching)


def _matching(kind: int, key: sql.Composable, *, granted: bool) -> sql.Composable:
    """A SQL condition on ``pg_locks l``: its row is the lock of ``key`` of ``kind``, held (``granted``) or awaited."""
    return sql.SQL(
        "l.locktype = 'advisory' AND {granted}"
        " AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())"
        " AND l.classid = {kind}::oid AND l.objid = hashtext({key}::text)::oid AND l.objsubid = 2"
    ).format(granted=sql.SQL("l.granted" if granted else "NOT l.granted"), kind=sql.Literal(kind), key=key)
