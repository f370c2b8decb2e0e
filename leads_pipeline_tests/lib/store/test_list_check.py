"""A lead's list (sql/013): checked once per statement, with what the foreign key it replaced guaranteed."""

from __future__ import annotations

import psycopg
import pytest

from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list

USER = "tester"


def _lists(database_url: str, *names: str) -> list[int]:
    with connect(database_url) as conn:
        return [create_list(conn, name, owner=USER).id for name in names]


def _insert(conn: psycopg.Connection[dict[str, object]], *list_ids: int) -> list[int]:
    rows = conn.execute(
        "INSERT INTO leads (list_id, first_name) SELECT id, 'Ann' FROM unnest(%s::bigint[]) AS id RETURNING id",
        (list(list_ids),),
    ).fetchall()
    return [int(r["id"]) for r in rows]


def test_leads_of_existing_lists_are_stored_and_an_unknown_list_refuses_the_whole_statement(database_url: str) -> None:
    fair, expo = _lists(database_url, "fair", "expo")
    with connect(database_url) as conn:
        assert len(_insert(conn, fair, fair, expo)) == 3
    with (
        pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"names list {expo + 100}, which does not exist"),
        connect(database_url) as conn,
    ):
        _insert(conn, fair, expo + 100, expo)
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM leads").fetchone() == {"n": 3}, "nothing of it stored"


def test_the_check_of_new_leads_reads_them_once(database_url: str) -> None:
    """sql/138: the lists to lock and the check for a missing one come from one read of the statement's new leads
    (the second read, an anti-join of every new lead against lists, was ~0.04 s of each 50k-row import chunk)."""
    with connect(database_url) as conn:
        body = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'leads_inserted_list_check'").fetchone()
    assert body is not None and str(body["prosrc"]).count("new_leads") == 1


def test_a_lead_moves_only_to_a_list_that_exists(database_url: str) -> None:
    fair, expo = _lists(database_url, "fair", "expo")
    with connect(database_url) as conn:
        (lead,) = _insert(conn, fair)
        conn.execute("UPDATE leads SET list_id = %s WHERE id = %s", (expo, lead))
    with (
        pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"lead {lead} names list {expo + 100}"),
        connect(database_url) as conn,
    ):
        conn.execute("UPDATE leads SET list_id = %s WHERE id = %s", (expo + 100, lead))
    with connect(database_url) as conn:
        assert conn.execute("SELECT list_id FROM leads WHERE id = %s", (lead,)).fetchone() == {"list_id": expo}


def test_a_list_with_leads_keeps_its_row_and_an_empty_one_can_go(database_url: str) -> None:
    fair, expo = _lists(database_url, "fair", "expo")
    with connect(database_url) as conn:
        _insert(conn, fair)
    with (
        pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"delete of list {fair} refused: leads still belong"),
        connect(database_url) as conn,
    ):
        conn.execute("DELETE FROM lists WHERE id = %s", (fair,))
    with connect(database_url) as conn:
        conn.execute("UPDATE lists SET name = 'Fair 2026' WHERE id = %s", (fair,))
        conn.execute("DELETE FROM lists WHERE id = %s", (expo,))
        assert [r["id"] for r in conn.execute("SELECT id FROM lists")] == [fair]


def test_a_list_cannot_be_deleted_under_leads_being_written_to_it(database_url: str) -> None:
    (fair,) = _lists(database_url, "fair")
    with connect(database_url) as writer, connect(database_url) as deleter:
        _insert(writer, fair)  # not committed yet: the new lead is invisible to the deleter
        deleter.execute("SET lock_timeout = '300ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            deleter.execute("DELETE FROM lists WHERE id = %s", (fair,))
