"""The personal-data registry covers every table that can hold data about a person, and its queries run."""

from __future__ import annotations

import re
from typing import Final

from psycopg import sql

from leads_pipeline.lib.privacy.registry import REGISTRY
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.keys import SEALED_COLUMNS
from leads_pipeline.lib.store.privacy import Person, deployed

NOT_PERSONAL: Final = {
    "lists": "list names, owners and settings: about users, not leads",
    "list_members": "users and their roles",
    "batches": "batch ids and descriptions (a selection's, masked: no address or number)",
    "schema_migrations": "applied migration files",
    "key_checks": "check values of the keys, which tell keys apart and reveal nothing of them",
    "suppressions": "keyed hashes only, which must outlive the erasure",
    "opt_outs": "keyed hashes only, which must outlive the person's leads",
    "retention_policies": "numbers of days",
    "key_rotations": "encryption key ids and rotation progress",
    "inbox_sensor_state": "the drop folder sensor's paths, sizes, times and hashes of the files in the inbox",
    "rate_buckets": "provider pacing: a provider name, a hash of its API key and two times",
    "lead_references": "the columns that name a lead, and what a deleted lead does to their rows",
    # Other stages' tables, when deployed in the same database.
    "mail_domains": "MX records of company domains",
    "dnc_lists": "loads of the national do-not-call registry",
    "dnc_numbers": "the national do-not-call registry itself (blind indexes), which an erasure must not shorten",
    "enrichment_jobs": "job settings and estimates",
    "enrichment_progress": "per-source job progress",
    "company_profiles": "facts about companies",
    "list_enrichment_settings": "per-list enrichment defaults",
    "scoring_configs": "scoring rules",
    "scoring_models": "trained model parameters and metrics",
    "crm_connections": "CRM connection settings",
    "crm_sync_runs": "sync run counts and status",
    "crm_key_claims": "hashed match keys, held only inside a sync's transaction (empty at rest, unlogged)",
}


def test_every_table_is_registered_or_known_to_hold_no_personal_data(database_url: str) -> None:
    """A stage adding a table must add it to REGISTRY (or here, saying why it holds nothing about a person);
    a partitioned table's entry covers its partitions."""
    with connect(database_url) as conn:
        tables = {
            r["table_name"]
            for r in conn.execute(
                "SELECT relname AS table_name FROM pg_class WHERE relnamespace = 'leads'::regnamespace"
                " AND relkind IN ('r', 'p') AND NOT relispartition"
            )
        }
    registered = {entry.table for entry in REGISTRY}
    assert tables - registered - set(NOT_PERSONAL) == set()
    assert not registered & set(NOT_PERSONAL) and len(registered) == len(REGISTRY)
    assert REGISTRY[-1].table == "leads", "leads last: deleting them cascades to the tables found by lead id"


def test_every_find_query_runs_with_a_person(database_url: str) -> None:
    person = Person("email", "jo@a.example", lead_ids=[1, 2], emails=["jo@a.example"], phones=["+14155550100"])
    with connect(database_url) as conn:
        for entry in deployed(conn):
            query = sql.SQL("SELECT count(*) AS n FROM {} t WHERE {}").format(
                sql.Identifier(entry.table),
                sql.SQL(entry.find),  # type: ignore[arg-type]
            )
            assert conn.execute(query, person.params()).fetchone() == {"n": 0}, entry.table
            assert entry.erase != "clear" or entry.clear, entry.table


def test_no_search_compares_the_text_of_a_column_stored_sealed() -> None:
    """Import errors' values and CRM sync messages are sealed by their writers, and those an older version wrote
    in clear were sealed by sql/093: their searches "value in clear holds her address" found nothing any more,
    and kept an index of its own (sql/081) for it. A sealed column is found by its blind indexes or its lead."""
    checked = set()
    for spec in SEALED_COLUMNS:
        for entry in (e for e in REGISTRY if e.table == spec.table):
            for column, kind in spec.columns:
                text = rf"\bt\.{column}\b"
                assert kind == "json" or not re.search(text, entry.find), (entry.table, column)
                checked.add((entry.table, column))
    assert {("import_errors", "value"), ("crm_sync_log", "message")} <= checked
