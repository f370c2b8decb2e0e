"""``leads score``, ``leads show``, ``leads stage set`` and ``leads model train`` as a user runs them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rich.console import Console

from leads_pipeline.commands import common
from leads_pipeline.commands import score as score_commands
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.store.migrations import apply_migrations
from leads_pipeline_tests.paths import DEMO_FILE, SHARED_DATA
from leads_pipeline_tests.support import Leads, database_before, import_file

pytestmark = pytest.mark.integration


def _demo_list(database_url: str) -> list[int]:
    """The demo file imported into a list named "demo"; its lead ids."""
    with connect(database_url) as conn:
        create_list(conn, "demo", owner="tester")
    import_file(database_url, DEMO_FILE, "demo")
    with connect(database_url) as conn:
        return [int(r["id"]) for r in conn.execute("SELECT id FROM leads ORDER BY id")]


def test_score_a_list_show_history_and_set_a_stage(leads: Leads, database_url: str, tmp_path: Path) -> None:
    ids = _demo_list(database_url)
    config = tmp_path / "scoring.yaml"
    config.write_text("thresholds: {mql: 20, sql: 60}\n")
    response = leads.json("score", "--list", "demo", "--config", str(config), "--json")
    assert response["scored"] == len(ids)
    assert sum(response["distribution"].values()) == len(ids)
    assert set(response) >= {"scored", "distribution", "averageScore", "batchId", "configVersion", "stages"}
    assert 0 < response["averageScore"] < 100

    shown = leads.json("show", str(ids[0]), "--score-history", "--json")
    assert shown["score"]["score"] == sum(shown["score"]["components"].values())
    assert shown["score"]["explanation"]
    assert len(shown["scoreHistory"]) == 1

    subset = tmp_path / "ids.txt"
    subset.write_text(f"{ids[0]}\n{ids[1]}\n")
    again = leads.json("score", "--list", "demo", "--ids", str(subset), "--json")
    assert again["scored"] == 2

    changed = leads.json("stage", "set", str(ids[0]), "Customer", "--reason", "signed", "--json")
    assert changed["to"] == "customer" and changed["changedBy"] == "tester"
    text = leads.ok("show", str(ids[0]), "--score-history")
    assert "stage customer" in text and "signed" in text and "score history" in text
    # the file's other columns were in --json's custom only: the text showed none of them
    assert "\n  custom.Customer Id: DD37Cf93aecA6Dc\n" in text
    assert "\n  custom.Subscription Date: 2020-08-24\n" in text


def test_score_history_and_stage_changes_are_shown_whole_at_80_columns(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a pipe, a log) `leads show --score-history` cut the components to "dataComplete…" and the
    config to "cfg-8cc797e7…", and broke a stage change's reason, and a long field's value, over lines. There
    each field takes one line, each score and each change two, every value whole; a wide terminal keeps the
    tables."""
    lead = str(_demo_list(database_url)[0])
    title = "Senior Vice President, Global Procurement and Strategic Sourcing (EMEA, APAC and LATAM)"
    leads.ok("bulk", "set", "title", title, "--id", lead)
    leads.ok("score", "--list", "demo")
    name = "Q3 EMEA Trade Fair Leads 2026 (Frankfurt Messe, Hall 4, Stand B17)"
    leads.ok("lists", "rename", "demo", name)
    reason = "demo booked by phone with the head of procurement, follow up in March after the trade fair"
    leads.ok("stage", "set", lead, "sql", "--reason", reason)
    shown = leads.json("show", lead, "--score-history", "--json")
    [scored], [change] = shown["scoreHistory"], shown["stageChanges"]
    components = " ".join(f"{k}={v}" for k, v in scored["components"].items())
    narrow = Console(width=80)  # the tables and the lines above them, as a pipe has them whatever the terminal
    monkeypatch.setattr(common, "console", narrow)
    monkeypatch.setattr(score_commands, "console", narrow)
    lines = leads.ok("show", lead, "--score-history").splitlines()
    assert lines[0] == f"lead {lead} in {name}: stage sql"  # the list's name and a field's value whole too
    assert f"  title: {title}" in lines
    at = lines.index("score history:")
    assert lines[at:] == [
        "score history:",
        f"{scored['scoredAt'][:16].replace('T', ' ')}: score {scored['score']} ({scored['band']}), stage new",
        f"  {components}, config {scored['configVersion']}",
        "stage changes:",
        f"{change['changedAt'][:16].replace('T', ' ')}: new to sql, by tester",
        f"  {reason}",
    ]
    monkeypatch.setattr(common, "console", Console(width=200))
    text = leads.ok("show", lead, "--score-history")
    assert "score history" in text and f"│ {reason} │" in text  # the tables


def test_show_indents_the_later_lines_of_a_note_under_it(leads: Leads, database_url: str, tmp_path: Path) -> None:
    """A note's later lines began at the left margin, where they read as fields of their own (or, after a lone CR,
    overwrote the line); each is indented under the note. --json keeps the note as stored."""
    leads.ok("lists", "create", "notes")
    notes = tmp_path / "notes.csv"
    notes.write_text('email,notes,company\nann@acme.com,"Call back in May\n- pricing\n- seats",Acme\n')
    import_file(database_url, notes, "notes")
    [lead] = leads.json("search", "--list", "notes", "--json")["leads"]
    assert leads.json("show", lead["id"], "--json")["fields"]["notes"] == "Call back in May\n- pricing\n- seats"
    text = leads.ok("show", lead["id"])
    assert "\n  notes: Call back in May\n    - pricing\n    - seats\n" in text, text


def test_show_and_stage_set_need_a_role_on_the_leads_list(leads: Leads, database_url: str) -> None:
    """A lead is read like its list (viewer, also when archived) and its stage written like it (editor, not when
    archived). A non-member was told the lead's list and its owner ("user 'bob' is not a member of list 'demo'
    ... an owner such as 'tester' can grant it"): now the refusal of a lead id that does not exist."""
    lead = str(_demo_list(database_url)[0])
    leads.ok("lists", "share", "demo", "vera", "--role", "viewer")
    leads.ok("lists", "share", "demo", "ana", "--role", "editor")
    for args in (["show", lead], ["show", lead, "--facts", "--json"], ["show", lead, "--score-history"]):
        refusal = leads.fails(*args, user="bob")
        assert refusal == leads.fails(args[0], "424242", *args[2:], user="bob").replace("424242", lead), refusal
        assert f"lead {lead}: not found or not shared with you" in refusal
        assert "demo" not in refusal and "tester" not in refusal
    assert leads.run("show", lead, user="bob").stdout == ""
    refusal = leads.fails("stage", "set", lead, "mql", user="bob")
    assert refusal == leads.fails("stage", "set", "424242", "mql", user="bob").replace("424242", lead)
    viewer = leads.fails("stage", "set", lead, "mql", user="vera")
    assert "user 'vera' is a viewer of list 'demo'; setting its leads' stages needs the role editor or owner" in viewer
    assert leads.json("stage", "set", lead, "mql", "--json", user="ana")["changedBy"] == "ana"
    leads.ok("lists", "archive", "demo")
    assert "list 'demo' is archived and read-only" in leads.fails("stage", "set", lead, "sql", user="ana")
    assert leads.json("show", lead, "--json", user="vera")["stage"] == "mql"


def test_where_scores_only_the_matching_leads_and_viewers_are_refused(
    leads: Leads,
    database_url: str,
) -> None:
    ids = _demo_list(database_url)
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT country, count(*) AS n FROM leads WHERE country IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO list_members (list_id, username, role, granted_by)"
            " SELECT id, 'vera', 'viewer', 'tester' FROM lists WHERE name = 'demo'"
        )
    response = leads.json("score", "--list", "demo", "--where", f"country = {row['country']}", "--json")
    assert response["scored"] == row["n"] < len(ids)
    with connect(database_url) as conn:
        scored = conn.execute("SELECT count(*) AS n FROM leads WHERE score IS NOT NULL").fetchone()
    assert scored == {"n": row["n"]}

    assert "user 'vera' is a viewer of list 'demo'" in leads.fails("score", "--list", "demo", user="vera")
    assert "unknown field 'colour'" in leads.fails("score", "--list", "demo", "--where", "colour = red")


def test_ids_and_where_narrow_together_in_the_batch(leads: Leads, database_url: str, tmp_path: Path) -> None:
    ids = _demo_list(database_url)
    with connect(database_url) as conn:
        countries = {r["id"]: r["country"] for r in conn.execute("SELECT id, country FROM leads")}
    [country] = [c for c in (countries[i] for i in ids) if c is not None][:1]
    chosen = ids[:20]
    wanted = [i for i in chosen if countries[i] == country]
    id_file = tmp_path / "ids.txt"
    id_file.write_text("\n".join(map(str, chosen)) + "\n")
    response = leads.json("score", "--list", "demo", "--ids", str(id_file), "--where", f"country = {country}", "--json")
    assert response["scored"] == len(wanted) > 0
    with connect(database_url) as conn:
        scored = conn.execute(
            "SELECT lead_id FROM lead_scores WHERE batch_id = %s ORDER BY lead_id", (response["batchId"],)
        ).fetchall()
        # each run kept its members (~200 bytes a lead) for good, though its scores check was their last reader
        members = conn.execute("SELECT count(*) AS n FROM batch_leads").fetchone()
    assert [m["lead_id"] for m in scored] == sorted(wanted)
    assert members == {"n": 0}
    nothing = leads.fails("score", "--list", "demo", "--where", "country = ZZ")
    assert "nothing to score" in nothing
    with connect(database_url) as conn:
        batches = conn.execute("SELECT count(*) AS n FROM batches WHERE kind = 'selection'").fetchone()
    assert batches == {"n": 1}  # the empty selection recorded no batch


def test_the_members_of_score_runs_before_are_released(postgres_server: str, tmp_path: Path) -> None:
    """sql/182 releases the members every `leads score --list` run kept before (a run now releases its own when it
    ends); the batches stay, and the members of other batches (a day's rescore, an enrichment job) are kept."""
    with database_before(postgres_server, 182, tmp_path) as url:
        with connect(url) as conn:  # stored as that version stored leads (today's importer needs today's schema)
            list_id = create_list(conn, "demo", owner="tester").id
            conn.execute(
                "INSERT INTO leads (list_id, last_name, company)"
                " SELECT %s, 'Lead ' || n, 'Acme' FROM generate_series(1, 5) n",
                (list_id,),
            )
        batches = ("score-demo-20261101T000000000000", "rescore-20261101-abc", "enrich-demo-20261101")
        with connect(url) as conn:
            for batch in batches:
                conn.execute("INSERT INTO batches (id, kind) VALUES (%s, 'selection')", (batch,))
                conn.execute(
                    "INSERT INTO batch_leads (batch_id, lead_id) SELECT %s, id FROM leads ORDER BY id LIMIT 3", (batch,)
                )
        assert 182 in apply_migrations(url)
        with connect(url) as conn:
            kept = conn.execute("SELECT batch_id, count(*) AS n FROM batch_leads GROUP BY 1 ORDER BY 1").fetchall()
            left = conn.execute("SELECT count(*) AS n FROM batches WHERE id = ANY(%s)", (list(batches),)).fetchone()
    assert kept == [{"batch_id": "enrich-demo-20261101", "n": 3}, {"batch_id": "rescore-20261101-abc", "n": 3}]
    assert left == {"n": 3}


def test_score_errors_are_one_line(leads: Leads, database_url: str, tmp_path: Path) -> None:
    _demo_list(database_url)
    bad = tmp_path / "bad.yaml"
    bad.write_text("weights: {engagment: 3}\n")
    assert "weights.engagment: unknown key" in leads.fails("score", "--list", "demo", "--config", str(bad))
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")  # a binary file given by mistake was a UnicodeDecodeError traceback
    error = leads.fails("score", "--list", "demo", "--config", str(bad))
    assert f"{bad}: the scoring configuration is not UTF-8 text (byte 1)" in error
    assert "list 'nope': not found or not shared with you" in leads.fails("score", "--list", "nope")
    ids = tmp_path / "ids.txt"
    ids.write_text("99999999\n")
    assert "not live leads of the list: 99999999" in leads.fails("score", "--list", "demo", "--ids", str(ids))
    assert "lead 424242: not found or not shared with you" in leads.fails("show", "424242")
    assert "unknown stage 'won'" in leads.fails("stage", "set", "1", "won")


def test_setting_the_stage_a_person_set_changes_nothing_and_history_is_camel_case(
    leads: Leads,
    database_url: str,
) -> None:
    ids = _demo_list(database_url)
    lead = str(ids[0])
    assert leads.json("stage", "set", lead, "sql", "--reason", "demo booked", "--json")["changed"] is True
    again = leads.json("stage", "set", lead, "SQL", "--json")
    assert again["changed"] is False and again["from"] == again["to"] == "sql"
    assert "already sql (set by tester); nothing changed" in leads.ok("stage", "set", lead, "sql")
    shown = leads.json("show", lead, "--score-history", "--json")
    [change] = shown["stageChanges"]  # the no-ops recorded nothing
    assert {"fromStage", "toStage", "changedBy", "changedAt", "source", "reason"} <= set(change)
    assert change["toStage"] == "sql" and shown["scoreHistory"] == []
    assert "demo booked" in leads.ok("show", lead, "--score-history")


def test_model_train_reports_held_out_metrics(leads: Leads, tmp_path: Path) -> None:
    sample = tmp_path / "sample.csv"
    with (SHARED_DATA / "lead_scoring" / "Leads.csv").open(newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))[:301]
    with sample.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    trained = leads.json("model", "train", str(sample), "--json")
    assert trained["version"].startswith("fit-") and trained["holdoutRows"] == 90
    assert 0.5 < trained["auc"] <= 1


def test_model_train_needs_an_owner_of_every_list(leads: Leads, database_url: str, tmp_path: Path) -> None:
    """The newest model is the one every list's scoring with `model:` (and the daily rescore) uses: anyone could
    replace it. Refused before anything is read or trained."""
    _demo_list(database_url)  # tester's
    missing = tmp_path / "never-read.csv"
    result = leads.run("model", "train", str(missing), user="bob")
    assert result.exit_code == 1
    assert (
        "user 'bob' does not own every list; training the fit model every list's scoring uses reaches every list"
        in " ".join(result.stderr.split())
    )
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM scoring_models").fetchone() == {"n": 0}


def test_the_database_ending_a_scoring_mid_pipeline_adds_no_psycopg_warning(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database ended `leads score`'s connection while its writes were in flight in a pipeline: psycopg
    logged "error ignored terminating <psycopg.Pipeline [BAD]>: the connection is lost" on stderr ahead of the
    command's own outcome (here: the step's retry, which scores every lead)."""
    from leads_pipeline.lib.store import scoring as store

    ids = _demo_list(database_url)
    real_write_scores = store.write_scores
    ended: list[int] = []

    def ended_once(conn: psycopg.Connection[Any], *args: Any, **kwargs: Any) -> Any:
        if not ended:
            ended.append(conn.info.backend_pid)
            with connect(database_url, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s, 10000)", (conn.info.backend_pid,))  # gone
        return real_write_scores(conn, *args, **kwargs)

    monkeypatch.setattr(store, "write_scores", ended_once)
    result = leads.run("score", "--list", "demo", "--json")
    assert ended
    # a terminal shows them on stderr; under pytest psycopg's records come here
    assert not [record for record in caplog.records if record.getMessage().startswith("error ignored")]
    with connect(database_url) as conn:
        row = conn.execute("SELECT count(*) AS n FROM lead_scores").fetchone()
    assert row is not None and row["n"] == len(ids), "the step's retry scored them all"
    assert (result.exit_code, result.stderr) == (0, "")
