"""Backups and their restore: everything comes back under the same keys, and a restore that cannot finish (a damaged
file, a statement the server refuses, other keys, other sessions, data without replace) changes nothing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from leads_pipeline.lib.errors import ConfigurationError, InputFileError
from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.runtime import plain_postgres_url
from leads_pipeline.lib.store import backup
from leads_pipeline.lib.store.backup import Holdings
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list_if_missing
from leads_pipeline.lib.store.migrations import discover, prepare_database, sql_dir
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import database_before, import_file, sql_rows, sql_value


@pytest.fixture
def key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A leads home whose key files the first import creates (the embedded setup's keys)."""
    home = tmp_path / "home"
    monkeypatch.setenv("LEADS_HOME", str(home))
    monkeypatch.delenv(crypto.KEYS_VAR, raising=False)
    monkeypatch.delenv(crypto.ACTIVE_VAR, raising=False)
    monkeypatch.delenv("LEADS_SUPPRESSION_KEY", raising=False)
    crypto.forget_keyring()
    yield home
    crypto.forget_keyring()


def _as_stored(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the leads and Dagster schemas, as stored (sealed values as their ciphertext),
    and each sequence's next value."""
    with psycopg.connect(plain_postgres_url(database_url)) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('leads', 'public') ORDER BY 1, 2"
        ).fetchall()
        stored = {
            f"{schema}.{table}": sorted(
                conn.execute(sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))),
                key=repr,
            )
            for schema, table in tables
        }
        sequences = conn.execute("SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2")
        stored["sequences"] = sorted(sequences.fetchall(), key=repr)
    return stored


def _lead_emails(database_url: str) -> list[str]:
    return [
        row["email"] for row in sql_rows(database_url, "SELECT email FROM leads WHERE email IS NOT NULL ORDER BY id")
    ]


def _imported(database_url: str, list_name: str) -> dict[str, Any]:
    """The demo file imported into a new list, the keys recorded as every command records them first."""
    with connect(database_url) as conn:
        create_list_if_missing(conn, list_name, owner="tester")
    status = import_file(database_url, DEMO_FILE, list_name)
    prepare_database(database_url)
    return status


def test_a_backup_restored_into_another_database_holds_every_row_and_opens_under_the_same_keys(
    database_url: str, second_database_url: str, key_home: Path, tmp_path: Path
) -> None:
    first = _imported(database_url, "fair")
    made = backup.backup(database_url, tmp_path / "fair.dump")
    assert made.holdings == Holdings(lists=1, leads=first["results"]["imported"])
    assert made.keys == ["encryption:k1", "suppression"] and made.size == (tmp_path / "fair.dump").stat().st_size
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no scratch file left"

    archive = backup.read_archive(made.path)
    assert backup.require_archive_keys(archive) == []
    restored = backup.restore(second_database_url, archive)
    assert restored.replaced == Holdings(0, 0) and restored.holdings == made.holdings
    assert _as_stored(second_database_url) == _as_stored(database_url)
    emails = _lead_emails(second_database_url)
    assert emails and all("@" in email for email in emails), "sealed values open"
    # the blind indexes hold: the same file again finds every lead already there, and new ids follow the old
    again = import_file(second_database_url, DEMO_FILE, "fair")
    assert again["results"]["imported"] == 0
    assert again["results"]["skipped"] == first["results"]["imported"] + first["results"]["skipped"]
    assert sql_value(second_database_url, "SELECT max(id) FROM imports") == 2


def test_a_restore_is_refused_over_data_unless_replacing_and_while_another_session_uses_the_database(
    database_url: str, second_database_url: str, key_home: Path, tmp_path: Path
) -> None:
    _imported(database_url, "fair")
    archive = backup.read_archive(backup.backup(database_url, tmp_path / "fair.dump").path)
    _imported(second_database_url, "other")
    before = _as_stored(second_database_url)
    with pytest.raises(ConfigurationError, match=r"the database holds 1 list and \d+ leads.*--force"):
        backup.restore(second_database_url, archive)
    in_use = pytest.raises(ConfigurationError, match=r"in use by leads dev \(pid \d+\): stop `leads dev`")
    with psycopg.connect(plain_postgres_url(second_database_url), application_name="leads dev"), in_use:
        backup.restore(second_database_url, archive, replace=True)
    assert _as_stored(second_database_url) == before

    restored = backup.restore(second_database_url, archive, replace=True)
    assert restored.replaced.lists == 1
    assert [row["name"] for row in sql_rows(second_database_url, "SELECT name FROM lists")] == ["fair"]


def _stopping_half_way(tmp_path: Path) -> str:
    """A pg_restore that writes whole statements (the schema's), then fails without the data (a disk error, a
    file damaged past what its table of contents says): what it wrote would run, and must not be committed."""
    script = tmp_path / "pg_restore"
    script.write_text(f'#!/bin/sh\n"{backup._program("pg_restore")}" --schema-only "$@"\nexit 1\n', encoding="utf-8")
    script.chmod(0o755)
    return str(script)


def test_a_damaged_backup_or_a_statement_the_server_refuses_changes_nothing(
    database_url: str, second_database_url: str, key_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _imported(database_url, "fair")
    _imported(second_database_url, "kept")
    before = _as_stored(second_database_url)

    made = backup.backup(database_url, tmp_path / "fair.dump").path
    cut = tmp_path / "cut.dump"
    cut.write_bytes(made.read_bytes()[: made.stat().st_size * 9 // 10])
    with pytest.raises(InputFileError, match=f"{cut}: .*cannot be read"):
        backup.restore(second_database_url, backup.read_archive(cut), replace=True)
    assert _as_stored(second_database_url) == before

    archive = backup.read_archive(made)
    program, stopping = backup._program, _stopping_half_way(tmp_path)
    monkeypatch.setattr(backup, "_program", lambda name: stopping if name == "pg_restore" else program(name))
    with pytest.raises(InputFileError, match=r"the backup cannot be read .*; nothing was changed"):
        backup.restore(second_database_url, archive, replace=True)
    assert _as_stored(second_database_url) == before
    monkeypatch.setattr(backup, "_program", program)

    # a backup granting rights to a role the server no longer has (one made on another server)
    role = f"backup_reader_{os.getpid()}"
    with psycopg.connect(plain_postgres_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON leads.lists TO {}").format(sql.Identifier(role)))
    granting = backup.backup(database_url, tmp_path / "granting.dump").path
    with psycopg.connect(plain_postgres_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    with pytest.raises(ConfigurationError, match=f'refused \\(role "{role}" does not exist\\); nothing was changed'):
        backup.restore(second_database_url, backup.read_archive(granting), replace=True)
    assert _as_stored(second_database_url) == before


def test_a_backup_is_refused_under_keys_other_than_its_own_before_anything_changes(
    database_url: str, key_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _imported(database_url, "fair")
    archive = backup.read_archive(backup.backup(database_url, tmp_path / "fair.dump").path)

    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("LEADS_HOME", str(elsewhere))
    crypto.forget_keyring()
    with pytest.raises(ConfigurationError, match=r"keys this leads home \(.*elsewhere\) does not have: copy"):
        backup.require_archive_keys(archive)
    assert not elsewhere.exists() or not any(elsewhere.iterdir()), "no key made up in their place"

    crypto.keyring()  # this home's own keys: other keys of the same names
    crypto.blind_key()
    with pytest.raises(ConfigurationError, match=r"under other keys than this leads home's \(encryption key 'k1'"):
        backup.require_archive_keys(archive)

    for name in (crypto.KEY_FILE, "suppression.key"):
        shutil.copy(key_home / name, elsewhere / name)
    crypto.forget_keyring()
    assert backup.require_archive_keys(archive) == []
    monkeypatch.setenv(crypto.KEYS_VAR, f"k1:{crypto.new_key_line('x').partition(':')[2]}")
    crypto.forget_keyring()
    with pytest.raises(ConfigurationError, match="encryption key 'k1' differs"):
        backup.require_archive_keys(archive)
    # keys of other ids only: nothing to compare, and k1's values (if any are left) will not open
    monkeypatch.setenv(crypto.KEYS_VAR, crypto.new_key_line("k9"))
    crypto.forget_keyring()
    assert backup.require_archive_keys(archive) == ["k1"]


def test_a_file_that_is_no_backup_of_a_leads_database_is_refused_naming_it(
    database_url: str, postgres_server: str, tmp_path: Path
) -> None:
    text = tmp_path / "leads.csv"
    text.write_text("email\nana@example.com\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=f"{text}: cannot be read as a backup made by `leads db backup`"):
        backup.read_archive(text)
    with pytest.raises(InputFileError, match="no such file"):
        backup.read_archive(tmp_path / "missing.dump")
    other = backup.backup(postgres_server, tmp_path / "maintenance.dump").path  # the server's own database
    with pytest.raises(InputFileError, match="a backup of another database, not of a leads database"):
        backup.read_archive(other)
    written = backup.backup(database_url, tmp_path / "leads.dump").path
    with pytest.raises(InputFileError, match="already exists; add --force"):
        backup.backup(database_url, written)


def test_a_backup_of_an_older_version_is_brought_up_to_date_by_the_restore(
    postgres_server: str, second_database_url: str, key_home: Path, tmp_path: Path
) -> None:
    newest = max(migration.version for migration in discover(sql_dir()))
    with database_before(postgres_server, newest, tmp_path) as older:
        with connect(older) as conn:
            create_list_if_missing(conn, "fair", owner="tester")
        made = backup.backup(older, tmp_path / "older.dump")
    archive = backup.read_archive(made.path)
    assert archive.migration == newest - 1
    restored = backup.restore(second_database_url, archive)
    assert restored.migrations_applied == [newest] and restored.holdings == Holdings(lists=1, leads=0)
    assert sql_value(second_database_url, "SELECT max(version) FROM schema_migrations") == newest
