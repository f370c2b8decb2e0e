"""``leads audit``: the actions of other commands show up with actor, object and details; --since, --action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from leads_pipeline.commands import common
from leads_pipeline.commands.audit import parse_since
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import import_file


def test_list_bulk_and_export_actions_are_audited(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "fair")
    import_file(database_url, DEMO_FILE, "fair")
    leads.ok("lists", "share", "fair", "bob", "--role", "editor")
    leads.ok("lists", "unshare", "fair", "bob")
    leads.ok("bulk", "tag", "hot", "--where", "country = ES")
    leads.ok("bulk", "export", "--where", "email = ana.garcia@acme.es")
    leads.ok("bulk", "delete", "--where", "country = DE", "--yes")
    leads.ok("lists", "create", "old")
    leads.ok("lists", "delete", "old", "--purge", "--yes")
    entries = leads.json("audit", "--json")
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("tester", "list.share"),
        ("tester", "list.unshare"),
        ("tester", "leads.tag"),
        ("tester", "leads.export"),
        ("tester", "leads.delete"),
        ("tester", "list.purge"),
    ]
    share, _, tag, export, delete, purge = entries
    assert share["details"] == {"user": "bob", "role": "editor"} and share["object"].startswith("list:")
    assert tag["details"]["leadCount"] == 1 and tag["details"]["tags"] == ["hot"]
    assert export["details"]["selection"] == "all readable lists; email = <value>", "no contact data in the log"
    assert export["details"]["leadCount"] == 1
    assert delete["details"]["leadCount"] == 1 and len(delete["details"]["leadIds"]) == 1
    assert purge["details"] == {"name": "old", "leadCount": 0}
    assert [e["action"] for e in leads.json("audit", "--action", "list", "--json")] == [
        "list.share",
        "list.unshare",
        "list.purge",
    ]
    assert leads.json("audit", "--since", "1h", "--json") == entries
    assert "list.share" in leads.ok("audit")


def test_each_entry_is_shown_whole_at_80_columns(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns (a pipe, cron's mail) the six columns cut an entry's object and details to a few letters,
    and grepping the log for a list's name found nothing. There each entry takes two lines, every value whole; a
    wide terminal keeps the table."""
    name = "Q3 EMEA Trade Fair Leads 2026 (Frankfurt Messe, Hall 4, Stand B17)"
    leads.ok("lists", "create", name)
    leads.ok("lists", "delete", name, "--purge", "--yes")
    [entry] = leads.json("audit", "--json")
    at = datetime.fromisoformat(entry["at"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    monkeypatch.setattr(common, "console", Console(width=80))
    assert leads.ok("audit").splitlines() == [
        f"{entry['id']}  {at} tester list.purge {entry['object']}",
        f"  name={name}, leadCount=0",
    ]
    monkeypatch.setattr(common, "console", Console(width=200))
    assert f"│ name={name}, leadCount=0 │" in leads.ok("audit")


def test_merges_and_their_undo_are_audited(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "a")
    leads.ok("lists", "create", "b")
    import_file(database_url, DEMO_FILE, "a")
    import_file(database_url, DEMO_FILE, "b")
    merged = leads.json("dedupe", "--list", "a", "--list", "b", "--merge", "--json")
    assert merged["merges"], "the two copies of each lead are duplicates"
    actions = [e["action"] for e in leads.json("audit", "--action", "leads.merge", "--json")]
    assert actions and set(actions) == {"leads.merge"}
    entry = leads.json("audit", "--action", "leads.merge", "--json")[0]
    assert entry["details"]["leadCount"] == 2 and entry["object"].startswith("merge:")
    leads.ok("merges", "undo", entry["object"].split(":")[1])
    assert [e["action"] for e in leads.json("audit", "--action", "leads.merge-undo", "--json")] == ["leads.merge-undo"]


def test_since_accepts_durations_and_dates() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2026-02-01") == datetime(2026, 2, 1, tzinfo=UTC)
    with pytest.raises(ConfigurationError, match="expected a duration like 7d"):
        parse_since("last week")


def test_a_since_reaching_back_before_the_year_1_is_one_line(leads: Leads) -> None:
    """``--since 99999999d`` (and a count past what a duration holds) ended in an OverflowError traceback."""
    for since in ("99999999d", "9999999999w"):
        assert f"--since '{since}': reaches back before the year 1" in leads.fails("audit", "--since", since)


def test_a_limit_outside_its_range_is_a_usage_error(leads: Leads) -> None:
    """``--limit 0`` and ``-1`` showed every entry without saying so (and a limit past what slicing takes was a
    traceback); the range is named, as ``sync history --limit`` names its own."""
    for limit, bound in (("0", "greater than or equal to 1"), ("-1", "greater"), ("1000001", "less than or equal to")):
        result = leads.run("audit", "--limit", limit)
        error = " ".join(result.stderr.replace("│", " ").split())
        assert result.exit_code == 2 and "Traceback" not in result.output, limit
        assert "Invalid value for '--limit'" in error and bound in error, (limit, error)
    assert leads.json("audit", "--limit", "1", "--json") == []


def test_every_bulk_action_and_privacy_request_is_audited_without_contact_data(leads: Leads, database_url: str) -> None:
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "create", "later")
    import_file(database_url, DEMO_FILE, "fair")
    where = ("--where", "email = ana.garcia@acme.es")
    leads.ok("bulk", "tag", "hot", *where)
    leads.ok("bulk", "untag", "hot", *where)
    leads.ok("bulk", "set", "title", "CFO", *where)
    leads.ok("bulk", "copy", "--to", "later", *where)
    leads.ok("bulk", "move", "--to", "later", "--where", "country = DE")
    leads.ok("bulk", "delete", "--list", "fair", *where, "--yes")
    with connect(database_url) as conn:
        deleted = conn.execute("SELECT id FROM leads WHERE deleted_at IS NOT NULL").fetchone()
    assert deleted is not None
    leads.ok("bulk", "restore", "--id", str(deleted["id"]))
    leads.ok("privacy", "opt-out", "+34 912 345 678")
    leads.ok("privacy", "export", "ana.garcia@acme.es")
    entries = leads.json("audit", "--since", "1h", "--json")
    assert [e["action"] for e in entries] == [
        "leads.tag",
        "leads.untag",
        "leads.set",
        "leads.copy",
        "leads.move",
        "leads.delete",
        "leads.restore",
        "privacy.opt-out",
        "privacy.export",
    ]
    assert all(e["actor"] == "tester" and e["details"].get("leadCount", 1) >= 1 for e in entries)
    logged = str(entries)
    assert "ana.garcia@acme.es" not in logged and "912 345 678" not in logged and "34912345678" not in logged
    subjects = {e["details"]["subject"] for e in entries if e["action"].startswith("privacy.")}
    assert len(subjects) == 2 and all(len(s) == 64 for s in subjects), "requests named by keyed hash, whole"


def test_a_user_sees_their_own_entries_and_those_about_lists_they_can_read(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "create", "secret")
    import_file(database_url, DEMO_FILE, "fair")
    import_file(database_url, DEMO_FILE, "secret")
    leads.ok("lists", "share", "fair", "vic", "--role", "viewer")
    leads.ok("lists", "share", "secret", "eve", "--role", "viewer")
    leads.ok("bulk", "tag", "hot", "--list", "fair", "--where", "country = ES")
    leads.ok("bulk", "tag", "cold", "--list", "secret", "--where", "country = ES")
    leads.ok("bulk", "export", "--list", "fair", "--out", "/dev/null", user="vic")
    leads.ok("retention", "set", "facts", "30")
    everything = [(e["actor"], e["action"]) for e in leads.json("audit", "--json")]
    assert everything == [
        ("tester", "list.share"),
        ("tester", "list.share"),
        ("tester", "leads.tag"),
        ("tester", "leads.tag"),
        ("vic", "leads.export"),
        ("tester", "retention.set"),
    ]
    vic = leads.json("audit", "--json", user="vic")
    assert [(e["actor"], e["action"]) for e in vic] == [
        ("tester", "list.share"),  # of fair
        ("tester", "leads.tag"),  # leads of fair
        ("vic", "leads.export"),  # vic's own
    ]
    assert vic[1]["details"]["tags"] == ["hot"]
    assert leads.json("audit", "--json", user="bob") == []
    monkeypatch.setenv("LEADS_PRIVACY_OFFICERS", "bob")
    assert [(e["actor"], e["action"]) for e in leads.json("audit", "--json", user="bob")] == everything
