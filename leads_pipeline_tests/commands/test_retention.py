"""``leads retention``: set/show/unset, apply through the Dagster asset (recorded with its metadata), dry run."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from rich.console import Console

from leads_pipeline.commands import common
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.wording import counted
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import import_file


def test_set_show_apply_and_the_dagster_run(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "fair")
    import_file(database_url, DEMO_FILE, "fair")
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET updated_at = now() - interval '100 days' WHERE country = 'ES'")
    leads.ok("retention", "set", "leads", "90", "--list", "fair")
    leads.ok("retention", "set", "facts", "30")
    shown = leads.json("retention", "show", "--json")
    set_at = [datetime.fromisoformat(policy.pop("setAt")) for policy in shown]  # the table's "set at" too
    assert shown == [
        {"kind": "facts", "days": 30, "list": None, "setBy": "tester"},
        {"kind": "leads", "days": 90, "list": "fair", "setBy": "tester"},
    ]
    assert all(abs(datetime.now(UTC) - moment) < timedelta(minutes=5) for moment in set_at)
    refused = leads.fails("retention", "set", "leads", "1", "--list", "fair", user="bob")
    assert "not found or not shared with you" in refused
    assert "one of leads, facts, inbox" in leads.fails("retention", "set", "rows", "1")
    # more days than reach back to year 1 made every apply fail, more than an integer holds was a traceback
    for days in ("0", "36501", "99999999", "9223372036854775808"):
        assert (
            f"DAYS must be from 1 to 36500 (100 years; `leads retention unset facts` keeps them for good); got {days}"
            in leads.fails("retention", "set", "facts", days)
        )
    leads.ok("retention", "set", "inbox", "36500")
    leads.ok("retention", "unset", "inbox")

    dry = leads.json("retention", "apply", "--dry-run", "--json")
    assert (dry["dryRun"], dry["leadsDeleted"], dry["leadsDeletedByList"]) == (True, 1, {"fair": 1})
    assert leads.json("lists", "show", "fair", "--json")["leadCount"] == 33
    assert "removed 1 lead," in leads.ok("retention", "apply")
    assert leads.json("lists", "show", "fair", "--json")["leadCount"] == 32

    instance = dg.DagsterInstance.get()
    event = instance.get_latest_materialization_event(dg.AssetKey("retention_run"))
    assert event is not None and event.asset_materialization is not None
    assert event.asset_materialization.metadata["leads_deleted"].value == 1
    assert [e["action"] for e in leads.json("audit", "--action", "retention", "--json")] == [
        "retention.set",
        "retention.set",
        "retention.set",  # inbox 36500
        "retention.set",  # and unset
        "retention.apply",
    ]
    leads.ok("retention", "unset", "leads", "--list", "fair")
    assert len(leads.json("retention", "show", "--json")) == 1


def test_show_shows_each_policy_whole_at_80_columns(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns (a pipe, cron's mail) the table broke a long list name over two lines of its scope column,
    and grepping for it found nothing. There each policy takes two lines, every value whole; a wide terminal keeps
    the table."""
    name = "Q3 EMEA Trade Fair Leads 2026 (Frankfurt Messe, Hall 4, Stand B17) - do not contact after March"
    leads.ok("lists", "create", name)
    leads.ok("retention", "set", "leads", "90", "--list", name)
    leads.ok("retention", "set", "facts", "1")
    set_at = [policy["setAt"][:10] for policy in leads.json("retention", "show", "--json")]
    monkeypatch.setattr(common, "console", Console(width=80))
    assert leads.ok("retention", "show").splitlines() == [
        "(global): facts",
        f"  1 day, set by tester on {set_at[0]}",
        f"{name}: leads",
        f"  90 days, set by tester on {set_at[1]}",
    ]
    monkeypatch.setattr(common, "console", Console(width=200))
    assert leads.ok("retention", "show").startswith("┏")  # the table


def test_global_policies_and_applying_them_need_an_owner_of_every_list(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A global policy deletes in every list without its own and ``apply`` acts on (and reports on) every list:
    both need an owner of every list, or a privacy officer. The per-list form stays with the list's owner."""
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "create", "expo")
    import_file(database_url, DEMO_FILE, "fair")
    leads.ok("lists", "share", "fair", "ana", "--role", "owner")
    leads.ok("lists", "share", "expo", "vic", "--role", "viewer")
    leads.ok("retention", "set", "leads", "30", "--list", "fair", user="ana")
    # a list is named only to its members: vic sees 'expo', bob and ana are no members of it
    for user, missing in (("bob", "every list"), ("ana", "every list"), ("vic", "list 'expo'")):
        for args in (("set", "leads", "1"), ("unset", "leads"), ("apply",), ("apply", "--dry-run")):
            error = leads.fails("retention", *args, user=user)
            assert f"user {user!r} does not own {missing}" in error, error
            assert (
                "needs an owner of every list or a privacy officer (add" in error and "LEADS_PRIVACY_OFFICERS" in error
            )
    assert leads.json("retention", "show", "--json", user="bob") == []
    assert [p["list"] for p in leads.json("retention", "show", "--json", user="vic")] == []
    assert [p["list"] for p in leads.json("retention", "show", "--json", user="ana")] == ["fair"]
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM retention_policies WHERE list_id IS NULL").fetchone() == {"n": 0}

    leads.ok("retention", "set", "leads", "400")  # tester owns both lists
    leads.ok("lists", "share", "expo", "ana", "--role", "owner")
    leads.ok("retention", "set", "facts", "90", user="ana")
    assert "removed 0 leads" in leads.ok("retention", "apply", user="ana")
    monkeypatch.setenv("LEADS_PRIVACY_OFFICERS", "dpo, bob")
    leads.ok("retention", "unset", "facts", user="bob")
    assert leads.json("retention", "apply", "--dry-run", "--json", user="bob")["dryRun"] is True
    assert [(p["kind"], p["list"], p["setBy"]) for p in leads.json("retention", "show", "--json")] == [
        ("leads", None, "tester"),
        ("leads", "fair", "ana"),
    ]


def test_apply_says_which_imports_it_leaves_impossible_to_undo(leads: Leads, database_url: str, tmp_path: Path) -> None:
    """The leads policy removes the previous values an import kept of the leads it updated (its undo) and the
    column names of finished imports as old as it; `apply` (and `--dry-run`, where one checks before) named
    neither: only --json's importSnapshotsRemoved said that imports would no longer be undone."""
    leads.ok("lists", "create", "fair")
    import_file(database_url, DEMO_FILE, "fair")
    edited = tmp_path / "edited.csv"
    edited.write_text(DEMO_FILE.read_text(encoding="utf-8").replace("Rasmussen Group", "Rasmussen AG"), "utf-8")
    update = import_file(database_url, edited, "fair", on_duplicate="update")
    updated = update["results"]["updated"]
    assert updated >= 1
    with connect(database_url) as conn:
        conn.execute("UPDATE imports SET created_at = now() - interval '40 days'")
    leads.ok("retention", "set", "leads", "30")
    said = (
        f"the column names of 2 imports, the previous values of {counted(updated, 'updated lead')} (their imports"
        " can no longer be undone)"
    )
    assert said in leads.ok("retention", "apply", "--dry-run")
    assert said in leads.ok("retention", "apply")
    assert "the previous values of 0 updated leads," in leads.ok("retention", "apply")


def test_apply_json_names_by_list_what_the_text_counts_and_the_log_files(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """`apply --json` (the run's metadata) gave the import column names and previous values it removed only as
    totals and the run logs only as a count, where the store's report has them by list and by file name: a
    script could not tell which list's imports can no longer be undone, nor which logs went."""
    leads.ok("lists", "create", "fair")
    import_file(database_url, DEMO_FILE, "fair")
    edited = tmp_path / "edited.csv"
    edited.write_text(DEMO_FILE.read_text(encoding="utf-8").replace("Rasmussen Group", "Rasmussen AG"), "utf-8")
    updated = import_file(database_url, edited, "fair", on_duplicate="update")["results"]["updated"]
    with connect(database_url) as conn:
        conn.execute("UPDATE imports SET created_at = now() - interval '40 days'")
    log = tmp_path / "home" / "logs" / "job-1.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("enriching ana@example.com\n", encoding="utf-8")
    stamp = time.time() - 40 * 86_400
    os.utime(log, (stamp, stamp))
    leads.ok("retention", "set", "leads", "30")
    leads.ok("retention", "set", "logs", "30")

    for args in (("--dry-run",), ()):
        applied = leads.json("retention", "apply", *args, "--json")
        assert (applied["importMappingsCleared"], applied["importMappingsClearedByList"]) == (2, {"fair": 2})
        assert applied["importSnapshotsRemovedByList"] == {"fair": updated} and updated >= 1
        assert (applied["logFilesDeleted"], applied["logFiles"]) == (1, [str(log)])
    assert not log.exists()
