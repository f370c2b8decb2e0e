"""Row-level security on the later stages' tables (contacts, enrichment, scoring, CRM; sql/011): every table of
schema leads carrying a lead_id or list_id has it (read from the catalog, so a new table without it fails here),
and with plain SQL a user outside a list reads none of its rows while a member reads exactly their list's."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from leads_pipeline.lib.store import access
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list, get_list
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import connect_as, import_file, service_bypasses_row_security

SERVICE_ONLY = {
    "dnc_numbers": "its list_id names a Do-Not-Call registry file (dnc_lists), not a lead list",
    "crm_erasures": "erasure requests: nothing in them belongs to a list any more",
    "crm_creates_sent": "hashed match keys of CRM creates in flight: the sync's bookkeeping, not a list's data",
}
"""Tables with such a column that no reader may see at all: RLS on, no policy, and no grant to leads_reader."""

STAGE_TABLES = (
    "lead_scores", "score_history", "stage_changes", "crm_links", "crm_sync_runs", "crm_rejects", "crm_sync_log",
    "crm_conflicts", "enrichment_jobs", "enrichment_progress", "enrichment_failures", "webhook_deliveries",
    "list_enrichment_settings", "retention_policies", "credit_ledger", "credit_charges", "leads", "lead_facts",
)  # fmt: skip
"""The tables the fixture fills identically for two lists: a member of one sees exactly half of each."""


def _keyed_tables(conn: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    """Every table and view of schema leads with a lead_id or list_id column: kind, RLS, partition or not,
    policies, reader grant."""
    rows = conn.execute(
        """
        SELECT c.relname AS name, c.relkind AS kind, c.relrowsecurity AS rls,
               c.relispartition AS partition,
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
               has_table_privilege('leads_reader', c.oid, 'SELECT') AS granted,
               coalesce('security_invoker=true' = ANY(c.reloptions), false) AS invoker
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'leads' AND c.relkind IN ('r', 'p', 'v', 'm')
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped
                      AND a.attname IN ('lead_id', 'list_id'))
        ORDER BY 1
        """
    ).fetchall()
    return {r["name"]: r for r in rows}


def test_every_table_keyed_by_lead_or_list_has_row_security_and_a_policy(database_url: str) -> None:
    with connect(database_url) as conn:
        tables = _keyed_tables(conn)
    assert {"lead_scores", "crm_links", "enrichment_failures", "batch_leads"} <= set(tables), "the catalog query"
    problems = []
    for name, table in tables.items():
        if table["kind"] == "v":  # a view reads with its owner's rights unless security_invoker is set
            if table["granted"] and not table["invoker"]:
                problems.append(f"view {name} is granted to leads_reader without security_invoker")
        elif not table["rls"]:
            problems.append(f"{name} has no row-level security")
        elif table["partition"]:  # read through its parent, whose policy applies; never around it
            if table["granted"]:
                problems.append(f"partition {name} is readable by leads_reader apart from its parent's policy")
        elif name in SERVICE_ONLY:
            if table["granted"] or table["policies"]:
                problems.append(f"{name} is service-only ({SERVICE_ONLY[name]}) yet readable by leads_reader")
        elif not table["policies"] or not table["granted"]:
            problems.append(f"{name} needs a member_reads policy and a SELECT grant to leads_reader")
    assert problems == []


def _fill(conn: psycopg.Connection[Any], list_id: int) -> None:
    """A row in every later-stage table for each lead of the list (and per-list rows for the list and its job)."""
    leads = sql.SQL("FROM leads WHERE list_id = {}").format(sql.Literal(list_id))
    job = f"job-{list_id}"
    run = conn.execute(
        "INSERT INTO crm_sync_runs (connection, direction, list_id, started_by) VALUES ('hub', 'push', %s, 't')"
        " RETURNING id",
        (list_id,),
    ).fetchone()
    assert run is not None
    conn.execute("INSERT INTO batches (id, kind, list_id) VALUES (%s, 'selection', %s)", (job, list_id))
    conn.execute(
        "INSERT INTO enrichment_jobs (id, sources, template, created_by) VALUES (%s, '{company}', 'standard', 't')",
        (job,),
    )
    conn.execute("INSERT INTO enrichment_progress (job_id, source) VALUES (%s, 'company')", (job,))
    conn.execute(
        "INSERT INTO webhook_deliveries (job_id, run_id, url, payload, delivered) VALUES (%s, 'r', 'x', '{}', true)",
        (job,),
    )
    conn.execute("INSERT INTO list_enrichment_settings (list_id) VALUES (%s)", (list_id,))
    conn.execute(
        "INSERT INTO retention_policies (list_id, kind, days, set_by) VALUES (%s, 'leads', 30, 't')", (list_id,)
    )
    conn.execute("INSERT INTO crm_sync_log (sync_id, lead_id, action) VALUES (%s, NULL, 'pulled')", (run["id"],))
    per_lead = [
        "INSERT INTO lead_scores (lead_id, score, components, band, config_version)"
        " SELECT id, 50, '{{}}', 'warm', 'v1' {leads}",
        "INSERT INTO score_history (lead_id, score, components, band, stage, config_version)"
        " SELECT id, 50, '{{}}', 'warm', 'new', 'v1' {leads}",
        "INSERT INTO stage_changes (lead_id, from_stage, to_stage, source) SELECT id, 'new', 'mql', 'auto' {leads}",
        "INSERT INTO crm_links (lead_id, connection, remote_id) SELECT id, 'hub', 'r' || id {leads}",
        "INSERT INTO crm_rejects (lead_id, connection, sync_id, category, permanent, message)"
        " SELECT id, 'hub', {run}, 'rejected', true, 'no' {leads}",
        "INSERT INTO crm_sync_log (sync_id, lead_id, action) SELECT {run}, id, 'created' {leads}",
        "INSERT INTO crm_conflicts (sync_id, lead_id, field, rule, winner) SELECT {run}, id, 'title', 'crm_wins', 'crm'"
        " {leads}",
        "INSERT INTO enrichment_failures (job_id, lead_id, source, reason) SELECT {job}, id, 'company', 'x' {leads}",
        "INSERT INTO lead_facts (lead_id, field, value, source, confidence, cost, batch_id)"
        " SELECT id, 'title', 'CFO', 'test', 50, 1, {job} {leads}",
    ]
    for statement in per_lead:
        conn.execute(sql.SQL(statement).format(leads=leads, run=sql.Literal(run["id"]), job=sql.Literal(job)))


@pytest.fixture
def two_lists(database_url: str, users: tuple[str, str]) -> None:
    """Lists "fair" (the member's) and "other" (nobody's), imported from the same file, filled alike."""
    member, outsider = users
    with connect(database_url) as conn:
        create_list(conn, "fair", owner="tester")
        create_list(conn, "other", owner="tester")
    import_file(database_url, DEMO_FILE, "fair")
    import_file(database_url, DEMO_FILE, "other")
    with connect(database_url) as conn:
        conn.execute("INSERT INTO scoring_configs (version, config) VALUES ('v1', '{}')")
        conn.execute("INSERT INTO crm_connections (name, crm) VALUES ('hub', 'hubspot')")
        for name in ("fair", "other"):
            _fill(conn, get_list(conn, name, None).id)
        access.grant(conn, get_list(conn, "fair", None).id, member, "viewer", granted_by="tester")
        access.grant_database_login(conn, member)
        access.grant_database_login(conn, outsider)


def _counts(url: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        conn.execute("SET search_path = leads")
        query = "SELECT count(*) FROM {}"
        return {t: conn.execute(sql.SQL(query).format(sql.Identifier(t))).fetchone()[0] for t in tables}  # type: ignore[index]


def test_outside_a_list_no_row_of_any_stage_and_a_member_exactly_their_lists(
    database_url: str, users: tuple[str, str], two_lists: None
) -> None:
    member, outsider = users
    with connect(database_url) as conn:
        readable = [
            r["relname"]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'leads'"
                " AND c.relkind IN ('r', 'p', 'v', 'm') AND has_table_privilege('leads_reader', c.oid, 'SELECT')"
                " ORDER BY 1"
            )
        ]
    assert set(STAGE_TABLES) <= set(readable)
    everything = _counts(database_url, list(STAGE_TABLES))
    assert all(n > 0 and n % 2 == 0 for n in everything.values()), everything
    assert _counts(connect_as(database_url, outsider), readable) == dict.fromkeys(readable, 0)
    assert _counts(connect_as(database_url, member), list(STAGE_TABLES)) == {t: n // 2 for t, n in everything.items()}


def test_stage_tables_refuse_writes_and_service_only_tables_refuse_reads(
    database_url: str, users: tuple[str, str], two_lists: None
) -> None:
    member, _ = users
    with psycopg.connect(connect_as(database_url, member)) as conn:
        conn.execute("SET search_path = leads")
        for table in ("crm_erasures", "email_verifications", "company_profiles", "dnc_numbers"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE lead_scores SET score = 100")


def test_the_service_connection_reads_every_stage_row(database_url: str, two_lists: None) -> None:
    with connect(database_url) as conn:
        assert service_bypasses_row_security(conn)
        assert conn.execute("SELECT count(*) AS n FROM crm_links").fetchone() == {"n": 66}
