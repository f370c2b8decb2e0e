"""The match-key claims of a CRM push batch (sql/049), over the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from leads_pipeline.lib.store import crm as store
from leads_pipeline.lib.store import merges
from leads_pipeline.lib.store.db import connect, transaction
from leads_pipeline.lib.store.lists import ensure_list
from leads_pipeline_tests.support import write_while_deleted

pytestmark = pytest.mark.integration


def test_a_bulk_jobs_claims_hold_back_only_the_batches_with_one_of_its_keys(database_url: str) -> None:
    """A batch of more than 1,000 keys (a Bulk API job) locked the whole connection for as long as the job ran,
    so every other push of the connection waited minutes. Now it claims its keys: a batch with another key goes
    on at once, one with a key of the job (in other case) waits for it, and nothing is left once it ends."""
    keys = [f"person{i}@example.net" for i in range(10_000)]
    with (
        transaction(database_url) as job,
        store.lock_match_keys(job, "claims", keys),
        connect(database_url, autocommit=True) as other,
    ):
        other.execute("SET lock_timeout = '2s'")
        with other.transaction(), store.lock_match_keys(other, "claims", ["someone.else@example.net"]):
            pass
        with (
            pytest.raises(psycopg.errors.LockNotAvailable),
            other.transaction(),
            store.lock_match_keys(other, "claims", ["PERSON7@example.net"]),
        ):
            pass
    with connect(database_url) as db:
        left = db.execute("SELECT count(*) AS n FROM crm_key_claims WHERE connection = %s", ("claims",)).fetchone()
    assert left is not None and left["n"] == 0


def test_the_pull_cursor_only_moves_forward(database_url: str) -> None:
    """Two pulls of one connection at once each wrote the time of their chunk's newest record, so the one
    committing last could move the cursor back and the next pull read those records again. Now an older time
    (also one with another offset) leaves the cursor where it is, and a newer one moves it."""
    newest = datetime(2026, 11, 30, 3, 0, 0, 500_000, tzinfo=UTC)
    with transaction(database_url) as db:
        store.ensure_connection(db, "cursor_forward", "pipedrive")
        store.set_pull_cursor(db, "cursor_forward", newest)
        store.set_pull_cursor(db, "cursor_forward", newest - timedelta(seconds=1))
        store.set_pull_cursor(
            db, "cursor_forward", (newest - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=5)))
        )
        assert store.pull_cursor(db, "cursor_forward") == newest.isoformat()
        store.set_pull_cursor(db, "cursor_forward", newest + timedelta(milliseconds=1))
        assert store.pull_cursor(db, "cursor_forward") == (newest + timedelta(milliseconds=1)).isoformat()


def test_a_push_records_no_link_for_a_lead_deleted_while_it_was_sent(database_url: str) -> None:
    """`leads sync` while `leads imports undo` (or a purge) deleted a lead it was sending: recording the batch's
    links failed on the foreign key after the CRM had the records, the other leads' links with them (the next
    push sent them again). The outcome of a lead gone is logged, and the others are linked."""
    from leads_pipeline_tests.lib.scoring.support import add_leads

    with connect(database_url) as conn:
        list_id, [gone, kept] = add_leads(conn, [{"first_name": "Pat"}, {"first_name": "Lou"}], "pushed")
        store.ensure_connection(conn, "hub", "hubspot")
        run_id = store.start_run(conn, "hub", "push", list_id, "tester")
    outcomes = [store.Outcome(lead, "created", remote_id=f"r{lead}") for lead in (gone, kept)]

    def record() -> None:
        with connect(database_url) as conn:
            store.record_outcomes(conn, "hub", run_id, outcomes)

    write_while_deleted(database_url, gone, record)
    with connect(database_url) as conn:
        assert [r["lead_id"] for r in store.links(conn, "hub")] == [kept]
        logged = conn.execute("SELECT lead_id FROM crm_sync_log WHERE sync_id = %s ORDER BY lead_id", (run_id,))
        assert [r["lead_id"] for r in logged] == [gone, kept]


def test_a_pulled_record_follows_a_chain_of_merges_and_an_undo(database_url: str) -> None:
    """Lead b merged into a, then a into c: the record linked to b is c's (hold_lead follows merged_into through
    the chain); once the second merge is undone it is a's, and a lead deleted outright leads nowhere."""
    with transaction(database_url) as db:
        list_id = ensure_list(db, "Chain", owner="tester").id
        insert = "INSERT INTO leads (list_id, first_name, company, title) VALUES (%s, 'Cy', 'Chainco', %s) RETURNING id"
        a, b, c = (db.execute(insert, (list_id, title)).fetchone()["id"]  # type: ignore[index]
                   for title in (None, None, "CEO"))  # fmt: skip  # c: the most complete, a the oldest of a and b
        db.execute("INSERT INTO crm_connections (name, crm) VALUES ('chain', 'hubspot')")
        db.execute("INSERT INTO crm_links (lead_id, connection, remote_id) VALUES (%s, 'chain', 'r1')", (b,))
        assert merges.merge_cluster(db, [a, b], "tester", reasons=["name"], score=1.0).survivor_id == a
        second = merges.merge_cluster(db, [a, c], "tester", reasons=["name"], score=1.0)
        assert (second.survivor_id, second.merged_ids) == (c, [a])

    def held() -> tuple[int, int] | None:
        with transaction(database_url) as db:
            lead = store.lead_for_remote(db, "chain", "r1")
            return None if lead is None else (lead["id"], lead["linked_lead"])

    assert held() == (c, b)
    with transaction(database_url) as db:
        merges.undo_merge(db, second.merge_id, "tester")
    assert held() == (a, b)
    with transaction(database_url) as db:
        db.execute("UPDATE leads SET deleted_at = now() WHERE id = %s", (a,))
    assert held() is None
