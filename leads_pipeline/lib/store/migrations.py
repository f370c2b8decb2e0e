"""Applies the numbered SQL files in ``sql/`` in order, each once, each in its own transaction.

Concurrent callers (the CLI, a sensor, a run) serialize on an advisory lock, so applying is idempotent and safe
to call at the start of every command.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.runtime import PROJECT_ROOT
from leads_pipeline.lib.store.db import SCHEMA, connect

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x1EAD5
_RESPELLS_COMPANY_KEYS = 44
"""The migration whose leads' keys are recomputed in Python, by the import's own rule, after its SQL listed them."""
_SEALS_WEBHOOK_URLS = 80
"""The migration after whose SQL the webhook URLs still stored in clear are sealed in Python (SQL has no key)."""


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path


def sql_dir() -> Path:
    return Path(os.environ.get("LEADS_SQL_DIR") or PROJECT_ROOT / "sql")


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
    """Apply every migration not yet applied; return the versions applied now."""
    migrations = discover(folder or sql_dir())
    applied_now: list[int] = []
    with connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row["version"] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations:
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.path.read_text(encoding="utf-8"))  # type: ignore[arg-type]
                    if migration.version == _RESPELLS_COMPANY_KEYS:
                        from leads_pipeline.lib.store.bulk import respell_company_keys

                        respell_company_keys(conn)
                    if migration.version == _SEALS_WEBHOOK_URLS:
                        from leads_pipeline.lib.store.keys import seal_clear_secrets

                        seal_clear_secrets(conn)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.path.name),
                    )
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
