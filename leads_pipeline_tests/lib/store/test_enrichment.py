"""Enrichment jobs as stored by older versions, read by this one; the credit ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from leads_pipeline.lib.store import enrichment
from leads_pipeline.lib.store.contacts import Fact, insert_facts
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.imports import undo_import
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.store.migrations import apply_migrations
from leads_pipeline_tests.support import database_before, import_text

_JOB = (
    "WITH batch AS (INSERT INTO batches (id, kind, description) VALUES (%s, 'selection', 'leads') RETURNING id)"
    " INSERT INTO enrichment_jobs (id, sources, template, status, created_by)"
    " SELECT id, '{company}', 'standard', %s, 'tester' FROM batch"
)


def test_a_job_left_open_by_a_version_before_sql_067_reads_interrupted_after_the_upgrade(
    postgres_server: str, tmp_path: Path
) -> None:
    """A job whose process an older version's user killed, or that ran when the older version was stopped for the
    upgrade, stayed "processing" (or "queued") after the upgrade for good, as if Dagster ran it, and `leads jobs
    resume` refused it as still running. It reads interrupted now (no process holds its lock); one Dagster
    launched since the upgrade stays as recorded."""
    with database_before(postgres_server, 67, tmp_path) as url:
        with connect(url) as conn:
            for job, status in (("killed", "processing"), ("never-started", "queued"), ("done", "completed")):
                conn.execute(_JOB, (job, status))
        assert 116 in apply_migrations(url)
        with connect(url) as conn:
            conn.execute(_JOB, ("launched-by-dagster", "processing"))
            statuses = [
                enrichment.get_job(conn, job).status
                for job in ("killed", "never-started", "done", "launched-by-dagster")
            ]
        assert statuses == ["interrupted", "interrupted", "completed", "processing"]


_CHARGE = (
    "SELECT credits::float8 AS credits, source, field, stage, job_id, list_id, lead_id, fact_id FROM credit_charges"
)
_FACT = (
    "INSERT INTO lead_facts (lead_id, field, value, source, confidence, cost, batch_id, details)"
    " VALUES (%s, %s, 'x', %s, 50, %s, %s, %s) RETURNING id"
)


def _charges(conn: enrichment.Connection) -> list[dict[str, Any]]:
    return list(conn.execute(_CHARGE + " ORDER BY id"))


def _spending_list(conn: enrichment.Connection, name: str = "fair") -> tuple[int, int]:
    """A list with a job's batch ('job') and one lead: their ids."""
    list_id = create_list(conn, name, owner="tester").id
    conn.execute("INSERT INTO batches (id, kind, list_id) VALUES ('job', 'selection', %s)", (list_id,))
    lead = conn.execute("INSERT INTO leads (list_id) VALUES (%s) RETURNING id", (list_id,)).fetchone()
    assert lead is not None
    return list_id, int(lead["id"])


def test_sql_170_fills_the_ledger_with_the_charges_of_the_facts_that_exist(
    postgres_server: str, tmp_path: Path
) -> None:
    """The ledger was the costed facts; the charges that replace it start as those facts, each once, with its list
    and the people-search stage that bought a match (a contact stage's credits count it), and free facts none."""
    with database_before(postgres_server, 170, tmp_path) as url:
        with connect(url) as conn:
            list_id, lead = _spending_list(conn)
            facts = [
                conn.execute(_FACT, (lead, field, source, cost, job, Jsonb(details))).fetchone()
                for field, source, cost, job, details in (
                    ("industry", "company/gemini", 1, "job", {}),
                    ("person_match", "apify:people", 2, "job", {"stage": "phone"}),
                    ("email_status", "zerobounce", 1, None, {}),
                    ("industry", "import", 0, None, {}),
                )
            ]
        assert 170 in apply_migrations(url)
        with connect(url) as conn:
            charges = _charges(conn)
            month = enrichment.credits_this_month(conn)
    ids = [row["id"] for row in facts if row is not None]
    common = {"list_id": list_id, "lead_id": lead}
    assert [{k: v for k, v in c.items() if k != "fact_id"} for c in charges] == [
        {"credits": 1, "source": "company/gemini", "field": "industry", "stage": None, "job_id": "job", **common},
        {"credits": 2, "source": "apify:people", "field": "person_match", "stage": "phone", "job_id": "job", **common},
        {"credits": 1, "source": "zerobounce", "field": "email_status", "stage": None, "job_id": None, **common},
    ]
    assert [c["fact_id"] for c in charges] == ids[:3]
    assert month == 4


def test_a_resumed_company_job_rewriting_its_facts_is_charged_once_and_a_deleted_lead_keeps_its_charge(
    database_url: str,
) -> None:
    """Company enrichment replaces its batch's facts of a unit when a job is resumed, writing the paid answer's
    cost again on one fact: the rewrite replaces that fact's charge instead of adding one. A lead deleted since
    gets no facts in the rewrite, and its charge stays (its lead and fact ids cleared)."""
    with connect(database_url) as conn:
        list_id, lead = _spending_list(conn)
        other = conn.execute("INSERT INTO leads (list_id) VALUES (%s) RETURNING id", (list_id,)).fetchone()
        assert other is not None
        pair = [lead, int(other["id"])]

        def write() -> None:
            facts = [enrichment.FactRow(i, "industry", "Software", "company/gemini", 80, 1, {}) for i in pair]
            enrichment.replace_company_facts(conn, "job", pair, facts, {})

        write()
        write()  # resumed
        assert enrichment.credits_used(conn, "job") == 2
        assert enrichment.credits_by_lead(conn, "job") == {lead: 1, pair[1]: 1}
        conn.execute("DELETE FROM leads WHERE id = %s", (pair[1],))
        write()
        assert enrichment.credits_used(conn, "job") == 2
        assert enrichment.credits_by_lead(conn, "job") == {lead: 1}
        assert [(c["lead_id"], c["fact_id"] is None) for c in _charges(conn)] == [(None, True), (lead, False)]


def test_a_merge_moves_the_charges_with_the_facts_and_its_undo_moves_them_back(database_url: str) -> None:
    """A job's per-lead cap counts the credits on the lead holding their facts, as it did reading the facts: a
    merge moving the merged lead's facts to the survivor moves their charges too; the list stays the one spent on."""
    with connect(database_url) as conn:
        list_id, lead = _spending_list(conn)
        merged = conn.execute("INSERT INTO leads (list_id) VALUES (%s) RETURNING id", (list_id,)).fetchone()
        assert merged is not None
        conn.execute(_FACT, (merged["id"], "email_status", "zerobounce", 1, "job", Jsonb({})))
        conn.execute("UPDATE lead_facts SET lead_id = %s WHERE lead_id = %s", (lead, merged["id"]))
        assert enrichment.credits_by_lead(conn, "job") == {lead: 1}
        conn.execute("UPDATE lead_facts SET lead_id = %s WHERE lead_id = %s", (merged["id"], lead))
        assert enrichment.credits_by_lead(conn, "job") == {merged["id"]: 1}
        assert [c["list_id"] for c in _charges(conn)] == [list_id]


def test_a_fact_deleted_while_its_lead_stays_leaves_its_charge_on_the_lead_without_the_fact(
    postgres_server: str, tmp_path: Path
) -> None:
    """An erasure deletes the facts of other leads that name the person; their charges went on naming the deleted
    fact. The charge keeps its credits, job, list and lead, and forgets the fact, as a deleted lead's charge does;
    sql/230 clears the ids of the facts deleted so before it, and any other change is still refused."""
    with database_before(postgres_server, 230, tmp_path) as url:
        with connect(url) as conn:
            list_id, lead = _spending_list(conn)
            conn.execute(_FACT, (lead, "email_status", "zerobounce", 1, "job", Jsonb({})))
            conn.execute("DELETE FROM lead_facts")  # an erasure before sql/230
            assert [c["fact_id"] is None for c in _charges(conn)] == [False]
        assert 230 in apply_migrations(url)
        with connect(url) as conn:
            kept = conn.execute(_FACT, (lead, "email_status", "zerobounce", 2, "job", Jsonb({}))).fetchone()
            assert kept is not None
            conn.execute(_FACT, (lead, "phone_type", "twilio", 1, "job", Jsonb({})))
            conn.execute("DELETE FROM lead_facts WHERE source = 'twilio'")
            common = {"job_id": "job", "list_id": list_id, "lead_id": lead}
            assert [{k: c[k] for k in ("credits", "fact_id", *common)} for c in _charges(conn)] == [
                {"credits": 1, "fact_id": None, **common},
                {"credits": 2, "fact_id": kept["id"], **common},
                {"credits": 1, "fact_id": None, **common},
            ]
            assert enrichment.credits_by_lead(conn, "job") == {lead: 4}
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"), connect(url) as conn:
            conn.execute("UPDATE credit_charges SET fact_id = NULL")  # a fact that exists


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM credit_charges",
        "UPDATE credit_charges SET credits = 0.5",
        "UPDATE credit_charges SET job_id = 'another'",
        "UPDATE credit_charges SET lead_id = NULL",  # its lead still exists
        "UPDATE credit_charges SET lead_id = (SELECT max(id) FROM leads)",  # not the lead holding its fact
        "UPDATE credit_charges SET fact_id = NULL",
        "TRUNCATE credit_charges",
        # the rewrite's setting deletes only a charge whose fact it rewrites
        "DELETE FROM lead_facts; SELECT set_config('leads.rewriting_company_facts', 'on', true);"
        " DELETE FROM credit_charges",
    ],
)
def test_the_charges_are_append_only_even_for_their_owner(database_url: str, statement: str) -> None:
    """Nothing stopped a plain DELETE or UPDATE of the ledger: deleting the charges refunded the month's
    LEADS_MONTHLY_CREDITS, an UPDATE rewrote past spending. Every change but a deleted lead's, a merge's and a
    company job's rewrite (above) is refused, for the owner too."""
    with connect(database_url) as conn:
        list_id, lead = _spending_list(conn)
        conn.execute(_FACT, (lead, "email_status", "zerobounce", 1, "job", Jsonb({})))
        conn.execute("INSERT INTO leads (list_id) VALUES (%s)", (list_id,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"), connect(database_url) as conn:
        conn.execute(statement)  # type: ignore[arg-type]
    with connect(database_url) as conn:
        assert enrichment.credits_by_lead(conn, "job") == {lead: 1}
        assert [(c["credits"], c["job_id"], c["fact_id"] is None) for c in _charges(conn)] == [(1, "job", False)]


def test_a_facts_cost_is_never_rewritten_apart_from_its_charge(database_url: str) -> None:
    """A fact's charge is written with it (sql/170): an UPDATE of its cost would have left the ledger charging the
    old price. No code changes a cost, so the database refuses it; the fact's other columns still change."""
    with connect(database_url) as conn:
        _, lead = _spending_list(conn)
        conn.execute(_FACT, (lead, "email_status", "zerobounce", 1, "job", Jsonb({})))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="cost of a lead fact"), connect(database_url) as c:
        c.execute("UPDATE lead_facts SET cost = 3")
    with connect(database_url) as conn:
        conn.execute("UPDATE lead_facts SET details = '{}', cost = cost")
        assert enrichment.credits_used(conn, "job") == 1
        assert [f["cost"] for f in conn.execute("SELECT cost::float8 AS cost FROM lead_facts")] == [1]


def test_undoing_an_import_keeps_what_was_spent_on_its_leads(database_url: str, tmp_path: Path) -> None:
    """An import's undo deletes the leads it created, and their facts with them: the month's spending and the
    job's creditsUsed fell back by what had been spent on them."""
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
    status = import_text(
        database_url, tmp_path / "few.csv", "Email,Company\na@acme.example,Acme\nb@acme.example,Acme\n"
    )
    with connect(database_url) as conn:
        conn.execute("INSERT INTO batches (id, kind) VALUES ('job', 'selection')")
        ids = [int(r["id"]) for r in conn.execute("SELECT id FROM leads ORDER BY id")]
        insert_facts(conn, "job", [Fact(i, "email_status", "valid", "zerobounce", 90, cost=1) for i in ids])
    with connect(database_url) as conn:
        assert undo_import(conn, int(status["importId"]), "tester")["removed"] == 2
    with connect(database_url) as conn:
        assert (enrichment.credits_this_month(conn), enrichment.credits_used(conn, "job")) == (2, 2)
        assert [(c["lead_id"], c["fact_id"]) for c in _charges(conn)] == [(None, None), (None, None)]
