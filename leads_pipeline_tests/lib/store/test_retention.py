"""Retention: per-list policies override the global one; leads, fact payloads and inbox files go when old;
a dry run counts the same and changes nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store import audit, retention
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.store.migrations import apply_migrations
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import database_before, import_file


@pytest.fixture
def aged(database_url: str, tmp_path: Path) -> Path:
    """Lists "old" and "kept" (33 leads each), 10 leads of each untouched for 40 days, facts with payloads
    observed 20 and 2 days ago, and inbox files 40 and 1 days old."""
    with connect(database_url) as conn:
        create_list(conn, "old", owner="tester")
        create_list(conn, "kept", owner="tester")
    import_file(database_url, DEMO_FILE, "old")
    import_file(database_url, DEMO_FILE, "kept")
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE leads SET updated_at = now() - interval '40 days' WHERE id IN"
            " (SELECT id FROM leads l WHERE (SELECT count(*) FROM leads o WHERE o.list_id = l.list_id AND o.id < l.id)"
            " < 10)"
        )
        conn.execute(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence, observed_at, details)"
            " SELECT id, 'title', 'CFO', 'gemini', 70, now() - (CASE WHEN id % 2 = 0 THEN 20 ELSE 2 END) * interval"
            " '1 day', '{\"raw\": {\"answer\": \"CFO\"}}' FROM leads WHERE updated_at > now() - interval '1 day'"
        )
    inbox = tmp_path / "inbox"
    for folder in ("old", "kept", "unknown"):
        (inbox / folder).mkdir(parents=True)
        for name, days in (("stale.csv", 40), ("fresh.csv", 1)):
            path = inbox / folder / name
            path.write_text("email\n", encoding="utf-8")
            stamp = time.time() - days * 86_400
            os.utime(path, (stamp, stamp))
    return inbox


def _counts(database_url: str) -> dict[str, int]:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM leads) AS leads,"
            " (SELECT count(*) FROM lead_facts WHERE details <> '{}') AS payloads"
        ).fetchone()
    assert row is not None
    return dict(row)


def test_policies_apply_per_list_over_the_global_one(database_url: str, aged: Path) -> None:
    with connect(database_url) as conn:
        kept = conn.execute("SELECT id FROM lists WHERE name = 'kept'").fetchone()
        assert kept is not None
        retention.set_policy(conn, "leads", 30, list_id=None, actor="dpo")
        retention.set_policy(conn, "leads", 365, list_id=kept["id"], actor="dpo")
        retention.set_policy(conn, "facts", 10, list_id=None, actor="dpo")
        retention.set_policy(conn, "inbox", 30, list_id=None, actor="dpo")
        retention.set_policy(conn, "inbox", 60, list_id=kept["id"], actor="dpo")
        assert [(p["list"], p["kind"], p["days"]) for p in retention.policies(conn)] == [
            (None, "facts", 10),
            (None, "inbox", 30),
            (None, "leads", 30),
            ("kept", "inbox", 60),
            ("kept", "leads", 365),
        ]
    before = _counts(database_url)

    with connect(database_url) as conn:
        dry = retention.apply(conn, inbox=aged, actor="dpo", dry_run=True)
    assert _counts(database_url) == before and all(Path(f).exists() for f in dry.files), "a dry run changes nothing"

    with connect(database_url) as conn:
        report = retention.apply(conn, inbox=aged, actor="dpo")
    assert report.as_json() == {**dry.as_json(), "dryRun": False}
    assert report.leads == {"old": 10}, "the kept list keeps its leads for a year"
    after = _counts(database_url)
    assert after["leads"] == before["leads"] - 10
    purged = sum(report.facts.values())
    assert purged > 0 and after["payloads"] == before["payloads"] - purged
    assert sorted(Path(f).relative_to(aged).as_posix() for f in report.files) == [
        "old/stale.csv",
        "unknown/stale.csv",
    ]
    assert not (aged / "old" / "stale.csv").exists() and (aged / "kept" / "stale.csv").exists()
    with connect(database_url) as conn:
        [entry] = audit.entries(conn, action="retention.apply")
        assert entry["details"]["leadsDeleted"] == 10 and entry["actor"] == "dpo"
        again = retention.apply(conn, inbox=aged, actor="dpo")
    assert again.as_json()["leadsDeleted"] == 0 and again.files == [], "idempotent"


def test_the_inbox_policy_deletes_nothing_through_a_symbolic_link(database_url: str, tmp_path: Path) -> None:
    """A link in the drop folder (``inbox/x -> /home/bob``, or to the leads home) had every old file of the folder
    it names deleted (its subfolders' too), as was one a linked file names; the inbox sensor ignores both."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    inbox = tmp_path / "inbox"
    (inbox / "real").mkdir(parents=True)
    (inbox / "linked").symlink_to(elsewhere)
    (inbox / "real" / "link.csv").symlink_to(elsewhere / "target.csv")
    stale = [elsewhere / "precious.csv", elsewhere / "sub" / "deep.csv", elsewhere / "target.csv"]
    stale.append(inbox / "real" / "stale.csv")
    stamp = time.time() - 40 * 86_400
    for path in stale:
        path.write_text("email\n", encoding="utf-8")
        os.utime(path, (stamp, stamp))
    with connect(database_url) as conn:
        retention.set_policy(conn, "inbox", 30, list_id=None, actor="dpo")
        report = retention.apply(conn, inbox=inbox, actor="dpo")
    assert report.files == [str(inbox / "real" / "stale.csv")]
    assert all(path.exists() for path in stale[:3])


def test_a_leads_policy_clears_the_raw_rows_old_import_errors_kept(database_url: str, tmp_path: Path) -> None:
    """A rejected row never becomes a lead, so deleting old leads never removed it: its raw cells (name, address,
    number) stayed in the import errors for ever. The leads policy clears them once the import is as old, per
    list; the error itself (row, reason) stays for the import's report."""
    rejected = tmp_path / "rejected.csv"
    rejected.write_text(
        "First Name,Last Name,Email,Phone\nAna,Garcia,ana@acme.es,+34 912 345 678,one field too many\n"
        "Jo,Li,jo@li.example,\n",
        encoding="utf-8",
    )
    with connect(database_url) as conn:
        for name in ("old", "kept"):
            create_list(conn, name, owner="tester")
    for name in ("old", "kept"):
        import_file(database_url, rejected, name)
    with connect(database_url) as conn:
        conn.execute("UPDATE imports SET created_at = now() - interval '40 days'")
        kept = conn.execute("SELECT id FROM lists WHERE name = 'kept'").fetchone()
        assert kept is not None
        retention.set_policy(conn, "leads", 30, list_id=None, actor="dpo")
        retention.set_policy(conn, "leads", 365, list_id=kept["id"], actor="dpo")
        report = retention.apply(conn, inbox=tmp_path / "inbox", actor="dpo")
        errors = {
            r["name"]: (r["value"], r["subjects"], r["reason"])
            for r in conn.execute(
                "SELECT s.name, e.value, e.subjects, e.reason FROM import_errors e JOIN imports i ON i.id = e.import_id"
                " JOIN lists s ON s.id = i.list_id"
            )
        }
    assert report.errors == {"old": 1} and report.as_json()["importErrorsCleared"] == 1
    assert errors["old"][:2] == (None, None) and "expected 4 fields" in errors["old"][2]
    assert "ana@acme.es" in errors["kept"][0], "the kept list keeps them for a year"


def test_a_leads_policy_clears_the_column_names_of_old_finished_imports(database_url: str, tmp_path: Path) -> None:
    """A file without a header row had its first row, a person's name and details, read as the column names
    (csvfile refuses such a header now, not the files imported before): they stayed in imports.mapping for
    ever. The leads policy clears the mapping of finished imports as old as it; a failed import keeps the
    mapping it is resumed with."""
    path = tmp_path / "leads.csv"
    path.write_text("First Name,Last Name,Company\nJo,Li,Li Ltd\n", encoding="utf-8")
    with connect(database_url) as conn:
        for name in ("old", "kept"):
            create_list(conn, name, owner="tester")
    for name in ("old", "old", "kept"):
        import_file(database_url, path, name)
    with connect(database_url) as conn:
        conn.execute(
            """UPDATE imports SET created_at = now() - interval '40 days',
                   mapping = '{"Ana": null, "Garcia": null, "Acme": null}'"""
        )
        conn.execute("UPDATE imports SET status = 'failed' WHERE id = (SELECT min(id) FROM imports)")
        kept = conn.execute("SELECT id FROM lists WHERE name = 'kept'").fetchone()
        assert kept is not None
        retention.set_policy(conn, "leads", 30, list_id=None, actor="dpo")
        retention.set_policy(conn, "leads", 365, list_id=kept["id"], actor="dpo")
        report = retention.apply(conn, inbox=tmp_path / "inbox", actor="dpo")
        rows = conn.execute(
            "SELECT s.name, i.status, i.mapping FROM imports i JOIN lists s ON s.id = i.list_id ORDER BY i.id"
        )
        mappings = [(r["name"], r["status"], r["mapping"]) for r in rows]
    assert report.mappings == {"old": 1} and report.as_json()["importMappingsCleared"] == 1
    assert [m[:2] for m in mappings] == [("old", "failed"), ("old", "completed"), ("kept", "completed")]
    assert "Garcia" in mappings[0][2] and mappings[1][2] == {} and "Garcia" in mappings[2][2]


def _aged_file(path: Path, days: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("enriching ana@example.com\n", encoding="utf-8")
    stamp = time.time() - days * 86_400
    os.utime(path, (stamp, stamp))
    return path


def test_a_logs_policy_deletes_old_run_logs_on_disk(database_url: str, tmp_path: Path) -> None:
    """Run logs on disk (an enrichment job's logs/<job>.log, Dagster's compute logs of each run) were never
    removed, those of runs long gone included, though they can name people. The global logs policy deletes those
    older than its days (with Dagster's markers and the run folders left empty), and nothing else there."""
    jobs, dagster = tmp_path / "home" / "logs", tmp_path / "home" / "dagster"
    run = dagster / "84a5869a-380f-4a93-a4ee-3320af6d5b7c" / "compute_logs"
    old = [_aged_file(jobs / "job-1.log", 40), *(_aged_file(run / f"tsczuqnk{s}", 40) for s in (".out", ".err"))]
    marker = _aged_file(run / "tsczuqnk.complete", 40)
    kept = [_aged_file(jobs / "job-2.log", 1), _aged_file(dagster / "storage" / "retention_run", 40)]
    with connect(database_url) as conn:
        assert retention.apply(conn, inbox=tmp_path / "inbox", logs=[jobs, dagster], actor="dpo").logs == []
        with pytest.raises(ConfigurationError, match="a logs policy is global"):
            retention.set_policy(conn, "logs", 30, list_id=create_list(conn, "l", owner="t").id, actor="dpo")
        retention.set_policy(conn, "logs", 30, list_id=None, actor="dpo")
        dry = retention.apply(conn, inbox=tmp_path / "inbox", logs=[jobs, dagster], actor="dpo", dry_run=True)
        assert all(p.exists() for p in (*old, marker))
        report = retention.apply(conn, inbox=tmp_path / "inbox", logs=[jobs, dagster], actor="dpo")
        entry = audit.entries(conn, action="retention.apply")[-1]
    assert sorted(dry.logs) == sorted(report.logs) == sorted(str(p) for p in (*old, marker))
    assert report.as_json()["logFilesDeleted"] == 4 and entry["details"]["logFilesDeleted"] == 4
    assert not run.parent.exists() and all(p.exists() for p in kept) and jobs.is_dir()


def test_bad_policies_are_refused(database_url: str) -> None:
    with connect(database_url) as conn:
        with pytest.raises(ConfigurationError, match="one of leads, facts, inbox"):
            retention.set_policy(conn, "emails", 3, list_id=None, actor="dpo")
        with pytest.raises(ConfigurationError, match="DAYS must be from 1 to 36500"):
            retention.set_policy(conn, "leads", 0, list_id=None, actor="dpo")
        retention.set_policy(conn, "leads", 5, list_id=None, actor="dpo")
        retention.set_policy(conn, "leads", None, list_id=None, actor="dpo")
        assert retention.policies(conn) == []


def test_a_policy_of_more_days_than_the_bound_stored_by_an_older_version_is_clamped(
    postgres_server: str, tmp_path: Path
) -> None:
    """Before DAYS was bounded (1 to 36500) `retention set leads 99999999` was stored, and every `retention apply`
    then failed (timestamp out of range); sql/124 keeps such a policy at the bound, and apply runs."""
    with database_before(postgres_server, 124, tmp_path) as url:
        with connect(url) as conn:
            lead_list = create_list(conn, "forever", owner="tester")
            conn.execute(
                "INSERT INTO retention_policies (list_id, kind, days, set_by) VALUES"
                " (NULL, 'leads', 99999999, 'dpo'), (NULL, 'facts', 36500, 'dpo'), (%s, 'leads', 30, 'dpo')",
                (lead_list.id,),
            )
        assert 124 in apply_migrations(url)
        with connect(url) as conn:
            assert [(p["list"], p["kind"], p["days"]) for p in retention.policies(conn)] == [
                (None, "facts", 36500),
                (None, "leads", retention.MAX_DAYS),
                ("forever", "leads", 30),
            ]
            report = retention.apply(conn, inbox=tmp_path / "inbox", actor="dpo")
            assert (report.leads, report.facts) == ({}, {})
            with pytest.raises(psycopg.errors.CheckViolation):  # nor is such a policy stored again
                conn.execute("UPDATE retention_policies SET days = %s WHERE kind = 'facts'", (retention.MAX_DAYS + 1,))
