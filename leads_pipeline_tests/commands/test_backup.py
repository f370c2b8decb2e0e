"""``leads db backup`` and ``leads db restore``: as an owner of every list runs them, in the same leads home and in
a new one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leads_pipeline.lib.privacy import crypto
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import cli_environment, sql_value

KEY_FILES = (crypto.KEY_FILE, "suppression.key")


@pytest.fixture
def file_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys of the embedded setup: files in the leads home, made by its first command."""
    monkeypatch.delenv(crypto.KEYS_VAR, raising=False)
    monkeypatch.delenv(crypto.ACTIVE_VAR, raising=False)
    monkeypatch.delenv("LEADS_SUPPRESSION_KEY", raising=False)
    crypto.forget_keyring()
    yield
    crypto.forget_keyring()


def test_a_restore_brings_the_database_back_as_it_was_backed_up_and_both_are_audited(
    leads: Leads, database_url: str, tmp_path: Path, file_keys: None
) -> None:
    leads.ok("lists", "create", "fair")
    leads.ok("import", str(DEMO_FILE), "--list", "fair")
    written = leads.ok("db", "backup", str(tmp_path / "fair.dump")).splitlines()
    assert re.fullmatch(
        rf"backup written to {tmp_path}/fair\.dump \(\d+\.\d KB\): 1 list, 33 leads, their history, the audit log"
        " and Dagster's runs",
        written[0],
    )
    home = tmp_path / "home"
    assert written[1] == (
        f"it opens only with this leads home's keys, which it does not hold: encryption key k1 from"
        f" {home}/encryption.keys and the suppression key from {home}/suppression.key; keep copies of them apart"
        " from the backup"
    )
    assert "already exists; add --force" in leads.fails("db", "backup", str(tmp_path / "fair.dump"))

    leads.ok("lists", "create", "later")
    leads.ok("bulk", "delete", "--list", "fair", "--where", "email ~ @", "--yes")
    assert "holds 2 lists and 0 leads, which a restore replaces" in leads.fails(
        "db", "restore", str(tmp_path / "fair.dump")
    )
    restored = leads.json("db", "restore", str(tmp_path / "fair.dump"), "--force", "--json")
    assert restored["restored"] == {"lists": 1, "leads": 33} and restored["replaced"]["lists"] == 2
    assert restored["migrationsApplied"] == [] and restored["keysNotHere"] == []
    assert [found["name"] for found in leads.json("lists", "ls", "--json")] == ["fair"]
    assert len(leads.json("search", "--list", "fair", "--where", "email ~ @", "--json")["leads"]) > 20
    # the backup's entry was written after it (the restored log has none), the restore's in the restored log
    assert [e["action"] for e in leads.json("audit", "--action", "db", "--json")] == ["db.restore"]


def test_a_backup_reaches_every_list_so_it_needs_an_owner_of_every_list(
    leads: Leads, tmp_path: Path, file_keys: None
) -> None:
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "share", "fair", "ana", "--role", "editor")
    refused = leads.fails("db", "backup", str(tmp_path / "fair.dump"), user="ana")
    assert "a backup of the database reaches every list" in refused
    assert not (tmp_path / "fair.dump").exists()


def test_a_new_leads_home_restores_a_backup_once_it_has_the_backups_keys(
    leads: Leads,
    second_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_keys: None,
) -> None:
    leads.ok("lists", "create", "fair")
    leads.ok("import", str(DEMO_FILE), "--list", "fair")
    leads.ok("db", "backup", str(tmp_path / "fair.dump"))

    # another machine: its own database and leads home, used once already (its own keys made and recorded)
    new_home = tmp_path / "new-home"
    cli_environment(monkeypatch, second_database_url, new_home)
    crypto.forget_keyring()
    there = Leads(CliRunner())
    there.ok("lists", "create", "scratch")
    refused = there.fails("db", "restore", str(tmp_path / "fair.dump"), "--force")
    assert "under other keys than this leads home's (encryption key 'k1' differs): copy encryption.keys" in refused
    assert sql_value(second_database_url, "SELECT count(*) FROM lists") == 1

    for name in KEY_FILES:
        shutil.copy(tmp_path / "home" / name, new_home / name)
    crypto.forget_keyring()
    assert there.ok("db", "restore", str(tmp_path / "fair.dump"), "--force").startswith(
        f"restored {tmp_path}/fair.dump: 1 list, 33 leads (replacing 1 list, 0 leads)"
    )
    found = there.json("search", "--list", "fair", "--where", "email = ana.garcia@acme.es", "--json")["leads"]
    assert [lead["phone"] for lead in found] == ["+34912345678"]
