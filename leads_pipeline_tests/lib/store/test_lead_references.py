"""The rows that name a lead (sql/249): cascaded once per statement, checked per row, with what the foreign keys they
replaced guaranteed."""

from __future__ import annotations

import psycopg
import pytest

from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list

USER = "tester"
Connection = psycopg.Connection[dict[str, object]]


def _leads(database_url: str, count: int) -> list[int]:
    with connect(database_url) as conn:
        list_id = create_list(conn, "fair", owner=USER).id
        rows = conn.execute(
            "INSERT INTO leads (list_id, first_name) SELECT %s, 'Ann' FROM generate_series(1, %s) RETURNING id",
            (list_id, count),
        ).fetchall()
    return [int(r["id"]) for r in rows]


def _tag(conn: Connection, *lead_ids: int) -> None:
    conn.execute(
        "INSERT INTO lead_tags (lead_id, tag) SELECT id, 'vip' FROM unnest(%s::bigint[]) AS id", (list(lead_ids),)
    )


def _tagged(database_url: str) -> list[int]:
    with connect(database_url) as conn:
        return [int(r["lead_id"]) for r in conn.execute("SELECT lead_id FROM lead_tags ORDER BY lead_id")]


def test_rows_of_existing_leads_are_stored_and_an_unknown_lead_refuses_the_whole_statement(database_url: str) -> None:
    ann, bob = _leads(database_url, 2)
    with connect(database_url) as conn:
        _tag(conn, ann, bob)
    with (
        pytest.raises(
            psycopg.errors.ForeignKeyViolation, match=f"insert into lead_tags names lead {bob + 100}, which does not"
        ),
        connect(database_url) as conn,
    ):
        conn.execute("DELETE FROM lead_tags")
        _tag(conn, ann, bob + 100)
    assert _tagged(database_url) == [ann, bob], "nothing of the refused statement stored"


def test_a_row_moves_only_to_a_lead_that_exists(database_url: str) -> None:
    ann, bob = _leads(database_url, 2)
    with connect(database_url) as conn:
        _tag(conn, ann)
        conn.execute("UPDATE lead_tags SET lead_id = %s", (bob,))
    with (
        pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"update of lead_tags names lead {bob + 100}"),
        connect(database_url) as conn,
    ):
        conn.execute("UPDATE lead_tags SET lead_id = %s", (bob + 100,))
    assert _tagged(database_url) == [bob]


def test_deleted_leads_take_their_rows_and_leave_their_spend(database_url: str) -> None:
    """The deleted leads' rows go (here tags, facts, score history: the cascade is one loop over
    ``lead_references``, whose rows the last test holds to every table that names a lead) and the others' stay; a
    credit charge keeps its spend and loses its lead and fact, in one statement for all the leads."""
    ann, bob, cy = _leads(database_url, 3)
    with connect(database_url) as conn:
        _tag(conn, ann, bob, cy)
        conn.execute(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence, cost)"
            " SELECT id, 'industry', 'Retail', 'gemini', 0.9, 1 FROM unnest(%s::bigint[]) AS id",
            ([ann, bob, cy],),
        )
        conn.execute(
            "INSERT INTO score_history (lead_id, score, components, band, stage, config_version)"
            " SELECT id, 50, '{}', 'warm', 'new', 'cfg' FROM unnest(%s::bigint[]) AS id",
            ([ann, bob, cy],),
        )
        conn.execute("DELETE FROM leads WHERE id = ANY(%s)", ([ann, cy],))
        left = {
            table: [r["lead_id"] for r in conn.execute(f"SELECT lead_id FROM {table} ORDER BY lead_id")]
            for table in ("lead_tags", "lead_facts", "score_history")
        }
        charges = conn.execute(
            "SELECT lead_id, fact_id IS NULL AS forgot_fact, credits FROM credit_charges ORDER BY lead_id NULLS LAST"
        ).fetchall()
    assert left == {"lead_tags": [bob], "lead_facts": [bob], "score_history": [bob]}
    assert [(c["lead_id"], c["forgot_fact"]) for c in charges] == [(bob, False), (None, True), (None, True)]
    assert sum(float(str(c["credits"])) for c in charges) == 3, "spent credits stay spent"


def test_a_lead_cannot_be_deleted_under_rows_being_written_for_it(database_url: str) -> None:
    (ann,) = _leads(database_url, 1)
    with connect(database_url) as writer, connect(database_url) as deleter:
        _tag(writer, ann)  # not committed yet: the tag is invisible to the deleter
        deleter.execute("SET lock_timeout = '300ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            deleter.execute("DELETE FROM leads WHERE id = %s", (ann,))
        deleter.rollback()
        writer.commit()
        deleter.execute("DELETE FROM leads WHERE id = %s", (ann,))
    assert _tagged(database_url) == [], "the tag written meanwhile went with its lead"


def test_a_row_for_a_lead_being_deleted_waits_and_is_refused_once_it_is_gone(database_url: str) -> None:
    (ann,) = _leads(database_url, 1)
    with connect(database_url) as deleter, connect(database_url) as writer:
        deleter.execute("DELETE FROM leads WHERE id = %s", (ann,))  # not committed yet
        writer.execute("SET lock_timeout = '300ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            _tag(writer, ann)
        writer.rollback()
        deleter.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"names lead {ann}, which does not exist"):
            _tag(writer, ann)
    assert _tagged(database_url) == []


UNCHECKED: dict[str, str] = {
    "crm_sync_log": "a sync's log line outlives the lead it was about",
    "lead_search": "the search rows, written and deleted with their lead by leads' own triggers (sql/009)",
}


def test_every_table_that_names_a_lead_is_checked_and_cascaded(database_url: str) -> None:
    """A table added with a lead_id column and neither a key nor a ``reference_leads`` row would keep rows of
    deleted leads (a person's data after an erasure) and accept rows of leads that never existed."""
    with connect(database_url) as conn:
        naming = {
            (r["tab"], r["col"])
            for r in conn.execute(
                "SELECT c.relname AS tab, a.attname AS col FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                " WHERE c.relnamespace = 'leads'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
                " AND a.attname IN ('lead_id', 'survivor_id') AND NOT a.attisdropped"
            )
        }
        referenced = {(r["table_name"], r["column_name"]) for r in conn.execute("SELECT * FROM lead_references")}
        keyed = conn.execute(
            "SELECT count(*) AS n FROM pg_constraint WHERE contype = 'f' AND confrelid = 'leads'::regclass"
        ).fetchone()
        triggers = {
            (r["tab"], r["tgname"])
            for r in conn.execute(
                "SELECT tgrelid::regclass::text AS tab, tgname FROM pg_trigger"
                " WHERE tgfoid = 'lead_reference_checked'::regproc"
            )
        }
    assert {tab for tab, _ in naming - referenced} == set(UNCHECKED)
    assert len(referenced) == 14 and keyed == {"n": 0}, "no key left to run per row"
    assert triggers == {(tab, f"{tab}_lead_{when}") for tab, _ in referenced for when in ("exists", "moved")}
