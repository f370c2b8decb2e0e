"""Connections to the project's PostgreSQL: psycopg 3, schema ``leads`` first on the search path.

Every connection opens sealed PII as it loads it (``lib/privacy/crypto.py``): text and JSON values sealed at
rest arrive as plaintext, so no reader of emails, phones or addresses decrypts anything itself.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from leads_pipeline.lib.privacy.crypto import Opener
from leads_pipeline.lib.runtime import plain_postgres_url

SCHEMA = "leads"

BYTEWISE_KEYS = frozenset({"email_bidx", "phone_bidx", "mobile_phone_bidx", "name_key"})
"""Columns whose lookup indexes order their keys bytewise (``COLLATE "C"``): a lead's email, phone and mobile blind
indexes (sql/014, sql/059) and a search row's name key (sql/015). The keys are only ever compared for equality."""


def key_column(column: str, alias: str | None = None) -> sql.Composable:
    """``alias.column`` as a lookup or grouping compares it: bytewise for :data:`BYTEWISE_KEYS`, since a comparison
    under the database's collation cannot use their indexes (and sorts slower), as it is otherwise."""
    name = sql.Identifier(alias, column) if alias else sql.Identifier(column)
    return sql.SQL('{} COLLATE "C"').format(name) if column in BYTEWISE_KEYS else name


class _OpeningLoader(Loader):
    """A loader with its own :class:`Opener`: psycopg makes one per result column of a query."""

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        self._opener = Opener()


class _OpeningTextLoader(_OpeningLoader):
    """Text values, sealed ones opened."""

    def load(self, data: Buffer) -> str:
        return self._opener.text(data)


class _OpeningJsonLoader(_OpeningLoader):
    """JSON values, the sealed strings inside them opened."""

    def load(self, data: Buffer) -> Any:
        return self._opener.json(data)


def connect(database_url: str, *, autocommit: bool = False) -> psycopg.Connection[dict[str, Any]]:
    """Open a connection whose rows are dicts, whose search path starts with the leads schema, and which opens
    sealed values as it loads them.

    Its time zone is UTC: a server's default is the TZ of the shell that created it (the embedded one's initdb)
    or its own configuration, and times would be shown, and a day in ``--where created_at = DAY`` taken, in that
    zone, while ``leads audit --since`` and the schedules count in UTC.

    Its session is named (``session_name``) unless the URL or PGAPPNAME names it: libpq's fallback name."""
    url = plain_postgres_url(database_url)
    name = session_name()  # None: no name (psycopg leaves a None parameter out)
    conn = psycopg.connect(
        url, autocommit=autocommit, row_factory=dict_row, options=_options(url), fallback_application_name=name
    )
    for name in ("text", "varchar"):
        conn.adapters.register_loader(name, _OpeningTextLoader)
    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, _OpeningJsonLoader)
    return conn


_process_name: str | None = None


class ThreadConnections:
    """One connection per worker thread, opened on its first use and reused after (opening one takes ~10 ms,
    which per paid lookup or per company was more than the work), all closed by ``close``; one left closed
    (``held`` after an error that may have broken it) is opened anew on the thread's next use."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._local = threading.local()
        self._opened: list[psycopg.Connection[dict[str, Any]]] = []
        self._lock = threading.Lock()

    def get(self) -> psycopg.Connection[dict[str, Any]]:
        conn: psycopg.Connection[dict[str, Any]] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = connect(self._database_url)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    @contextmanager
    def held(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """The thread's connection for one block, closed when the block raises: the error may have broken it or
        left it inside a transaction, and the thread's next use opens another."""
        conn = self.get()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()


def name_sessions(name: str) -> None:
    """Name the sessions this process opens from here on (``leads jobs show``) outside a Dagster step."""
    global _process_name
    _process_name = name


def session_name() -> str | None:
    """What ``pg_stat_activity.application_name`` shows for a session opened here: ``dagster run <run id>
    <step>`` inside a Dagster step (in the step's thread), else the process's name (``name_sessions``). Without
    it an operator chasing a stuck run or a held lock could not tell which command or run a session was. Only
    names: never a command's arguments (a file, a person searched for) nor a URL."""
    dagster = sys.modules.get("dagster")  # not imported: no step can be running (and importing it takes a second)
    if dagster is not None:
        try:
            context = dagster.OpExecutionContext.get()
        except dagster.DagsterInvariantViolationError:
            pass
        else:
            return f"dagster run {context.run_id} {context.get_step_execution_context().step.key}"
    return _process_name


def existing_leads(
    conn: psycopg.Connection[dict[str, Any]], lead_ids: Iterable[int], *, live: bool = False
) -> set[int]:
    """Those of the leads that still exist, held (key share) until the transaction ends, for a writer of their
    facts that read them a while ago: one deleted since (an import undone, a list purged while the lookups ran)
    would fail the whole write on its lead check. A deletion in flight is waited for, and then seen. ``live``:
    only those not deleted softly either (merged away, deleted in bulk or with their list) when they are held; a
    merge or soft delete in flight, which holds its leads for update first, is waited for."""
    condition = " AND deleted_at IS NULL" if live else ""
    held = conn.execute(
        f"SELECT id FROM leads WHERE id = ANY(%s){condition} ORDER BY id FOR KEY SHARE", (sorted(set(lead_ids)),)
    )
    return {int(r["id"]) for r in held}


def storable_text(text: str) -> str:
    """``text`` as PostgreSQL can store it: a file name's bytes that are no UTF-8 (a Latin-1 name unzipped from a
    Windows archive), which Python keeps as lone surrogates, become U+FFFD; psycopg refused the whole value."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@functools.lru_cache(maxsize=8)
def _options(url: str) -> str:
    """The URL's own ``options`` (a ``statement_timeout``, Dagster's schema as ``search_path``), which the keyword
    replaced, then the leads schema first on the search path and UTC as the time zone (a later ``-c`` of a
    setting wins)."""
    theirs = conninfo_to_dict(url).get("options") or ""
    return f"{theirs} -c search_path={SCHEMA},public -c TimeZone=UTC".strip()


@contextmanager
def transaction(database_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection inside one transaction: committed when the block ends, rolled back on any error."""
    with connect(database_url) as conn:
        yield conn
