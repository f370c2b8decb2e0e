"""Applies the numbered SQL files in ``sql/`` in order, each once, each in its own transaction.

Concurrent callers (the CLI, a sensor, a run) serialize on an advisory lock, so applying is idempotent and safe
to call at the start of every command.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.runtime import project_files
from leads_pipeline.lib.store.db import SCHEMA, connect

Connection = psycopg.Connection[dict[str, Any]]

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x1EAD5
_PYTHON_STEPS: dict[int, tuple[str, str]] = {
    44: ("leads_pipeline.lib.store.bulk", "respell_company_keys"),
    80: ("leads_pipeline.lib.store.keys", "seal_clear_secrets"),
    86: ("leads_pipeline.lib.store.keys", "seal_leads_in_clear"),
    93: ("leads_pipeline.lib.store.keys", "seal_values_in_clear"),
    109: ("leads_pipeline.lib.store.bulk", "respell_slashed_company_keys"),
    112: ("leads_pipeline.lib.store.keys", "index_legacy_keys"),
    239: ("leads_pipeline.lib.store.bulk", "split_family_first_names"),
    240: ("leads_pipeline.lib.store.bulk", "rekey_family_first_names"),
}
"""Migrations whose work SQL cannot do, run in Python after their SQL in the same transaction (module, function):
44 and 109 recompute the company keys their SQL listed by the import's own rule; 80 seals the webhook URLs, 86 the
leads and 93 the other tables' values that older versions stored in clear, 112 re-keys the lookup caches keyed in
clear by blind index (SQL has no key), 239 splits the Chinese and Korean full names an earlier import kept whole
by the import's rule and 240 recomputes the name keys of Chinese, Japanese and Korean names. Imported only when
applied."""
_SEALS: frozenset[int] = frozenset({80, 86, 93, 112})
"""The migrations that seal or blind-index values under this process's keys: its keys are checked before any of
them runs."""


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path


def sql_dir() -> Path:
    return Path(os.environ.get("LEADS_SQL_DIR") or project_files() / "sql")


def discover(folder: Path) -> list[Migration]:
    """The migrations in ``folder``, by version; a misnamed or duplicate file is a configuration error."""
    if not folder.is_dir():
        raise ConfigurationError(f"{folder}: migrations folder not found; set LEADS_SQL_DIR to the repo's sql/")
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ConfigurationError(f"{path}: expected a name like 001_description.sql")
        version = int(match.group(1))
        if version in found:
            raise ConfigurationError(f"{path}: version {version} is also used by {found[version].path.name}")
        found[version] = Migration(version, path)
    return [found[v] for v in sorted(found)]


def apply_migrations(database_url: str, folder: Path | None = None) -> list[int]:
    """Apply every migration not yet applied; return the versions applied now. A role that may not apply them,
    or that row-level security would show no list, is refused with what to grant (``_privileges``,
    ``_require_service_role``)."""
    with connect(database_url, autocommit=True) as conn:
        return _migrate(conn, folder)


def prepare_database(database_url: str) -> None:
    """Apply the migrations, then check this process's keys against the database's (``require_database_keys``),
    on one connection: each command and each run did both on a connection of its own (~8 ms each). Migrations
    that seal values are preceded by the same check (``require_keys_to_seal``)."""
    from leads_pipeline.lib.store.keys import require_database_keys

    with connect(database_url, autocommit=True) as conn:
        _migrate(conn)
        with conn.transaction():
            require_database_keys(conn)


def _migrate(conn: Connection, folder: Path | None = None) -> list[int]:
    """``apply_migrations`` on an open connection in autocommit mode."""
    migrations = discover(folder or sql_dir())
    applied_now: list[int] = []
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        # IF NOT EXISTS checks the CREATE privilege before it looks: a role given only the tables of a
        # database that an administrator migrated would be refused by a statement with nothing to do.
        with _privileges(conn, f"create the schema {SCHEMA}"):
            if _missing(conn, "SELECT to_regnamespace(%s)", SCHEMA):
                conn.execute(f"CREATE SCHEMA {SCHEMA}")
            if _missing(conn, "SELECT to_regclass(%s)", f"{SCHEMA}.schema_migrations"):
                conn.execute(
                    f"CREATE TABLE {SCHEMA}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
        done = {row["version"] for row in conn.execute("SELECT version FROM schema_migrations")}
        pending = [migration for migration in migrations if migration.version not in done]
        if any(migration.version in _SEALS for migration in pending):
            from leads_pipeline.lib.store.keys import require_keys_to_seal

            with conn.transaction():
                require_keys_to_seal(conn)
        for migration in pending:
            with _privileges(conn, f"apply {migration.path.name}"), conn.transaction():
                conn.execute(migration.path.read_text(encoding="utf-8"))  # type: ignore[arg-type]
                if migration.version in _PYTHON_STEPS:
                    module, function = _PYTHON_STEPS[migration.version]
                    getattr(importlib.import_module(module), function)(conn)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.path.name),
                )
            applied_now.append(migration.version)
        _require_service_role(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _missing(conn: Connection, query: str, name: str) -> bool:
    row = conn.execute(f"{query} IS NULL AS missing", (name,)).fetchone()  # type: ignore[arg-type]
    return bool(row and row["missing"])


@contextmanager
def _privileges(conn: Connection, doing: str) -> Iterator[None]:
    """A privilege error of the block as one line saying what to grant: on a server of their own a team often
    gives the pipeline a role that is not a superuser, and psycopg's "permission denied for database" came as a
    traceback."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        role, database = conn.info.user, conn.info.dbname
        raise ConfigurationError(
            f"database role {role!r} may not {doing} in database {database!r} ({exc.diag.message_primary}):"
            f" migrations run as DATABASE_URL's role, which must own the database (as an administrator:"
            f' ALTER DATABASE "{database}" OWNER TO "{role}"), or connect as the role that owns the'
            f" {SCHEMA} schema's tables"
        ) from None


def _require_service_role(conn: Connection) -> None:
    """The pipeline's one connection must own the leads tables (or be a superuser, as on the embedded server): a
    role that was only granted the tables of a database another role migrated saw no list at all, with no error
    (row-level security, sql/007), and with BYPASSRLS its first import failed on the search partition it adds."""
    row = conn.execute(
        "SELECT pg_get_userbyid(relowner) AS owner, pg_has_role(current_user, relowner, 'USAGE')"
        " OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS owns"
        " FROM pg_class WHERE oid = %s::regclass",
        (f"{SCHEMA}.leads",),
    ).fetchone()
    if row is None or row["owns"]:
        return
    role, owner = conn.info.user, row["owner"]
    raise ConfigurationError(
        f"database role {role!r} does not own the {SCHEMA} tables (their owner is {owner!r}, the role that applied"
        " the migrations): row-level security would hide every list from it, and each import adds a search"
        f" partition to them; connect as {owner!r}"
    )
