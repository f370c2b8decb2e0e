"""Lookups of leads by email or phone go through the list's blind-index B-trees, which compare bytewise
(sql/014): a lookup that compared under the database's collation would read the whole list instead, silently."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.privacy.crypto import blind_index
from leads_pipeline.lib.store import crm, imports, privacy
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import Connection, create_list
from leads_pipeline.lib.store.search import select_lead_ids

USER = "tester"
LEADS = 300


def _email(i: int) -> str:
    return f"person{i}@example.com"


def _phone(i: int) -> str:
    return f"+1415555{i:04d}"


def _name_key(i: int) -> str:
    return f"lead {i}|acme"


@pytest.fixture
def list_id(database_url: str) -> int:
    """A list of LEADS leads, each with its own email and phone blind index."""
    with connect(database_url) as conn:
        created = create_list(conn, "keys", owner=USER).id
        conn.execute(
            "INSERT INTO leads (list_id, first_name, email_bidx, phone_bidx, name_key)"
            " SELECT %s, 'Lead', e, p, n FROM unnest(%s::text[], %s::text[], %s::text[]) AS k(e, p, n)",
            (
                created,
                [blind_index("email", _email(i)) for i in range(LEADS)],
                [blind_index("phone", _phone(i)) for i in range(LEADS)],
                [_name_key(i) for i in range(LEADS)],
            ),
        )
        conn.execute("ANALYZE leads")
    return created


def _entries_read(conn: Connection, lookup: Callable[[], Any], index: str) -> int:
    """Index entries ``lookup`` read from ``index``, in this transaction, with table scans ruled out: a lookup
    that cannot search the index by its key reads none of its entries (another index serves it) or all of them."""
    conn.execute("SET LOCAL enable_seqscan = off")

    def entries() -> int:
        row = conn.execute("SELECT pg_stat_get_xact_tuples_returned(%s::regclass) AS n", (index,)).fetchone()
        assert row is not None
        return int(row["n"])

    before = entries()
    lookup()
    return entries() - before


def _staged(conn: Connection, emails: list[str | None], name_keys: list[str | None]) -> None:
    conn.execute(
        "CREATE TEMP TABLE stg (row_number integer, lead_id bigint, dup boolean DEFAULT false, email_bidx text,"
        " phone_bidx text, linkedin_url text, name_key text) ON COMMIT DROP"
    )
    conn.execute(
        "INSERT INTO stg (row_number, email_bidx, name_key)"
        " SELECT n, e, k FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS r(e, k, n)",
        ([e and blind_index("email", e) for e in emails], name_keys),
    )


def test_an_import_finds_duplicates_by_key_not_by_reading_the_list(database_url: str, list_id: int) -> None:
    with connect(database_url) as conn:
        _staged(conn, [_email(7), _email(8), "new@example.com"], [None, None, None])
        read = _entries_read(conn, lambda: imports._match(conn, list_id, "email"), "leads_list_email_bidx")
        assert conn.execute("SELECT count(lead_id) AS n FROM stg").fetchone() == {"n": 2}
    assert 1 <= read <= 4


def test_an_import_finds_a_row_without_contact_keys_by_its_name_key(database_url: str, list_id: int) -> None:
    with connect(database_url) as conn:
        _staged(conn, [None, None], [_name_key(9), "someone else|acme"])
        read = _entries_read(conn, lambda: imports._match(conn, list_id, "email"), "lead_search_no_import_name")
        assert conn.execute("SELECT row_number FROM stg WHERE lead_id IS NOT NULL").fetchall() == [{"row_number": 1}]
    assert 1 <= read <= 4


@pytest.mark.parametrize(
    ("name", "lookup", "index"),
    [
        ("privacy request by email", lambda c, _: privacy.find_person(c, _email(7)), "leads_list_email_bidx"),
        ("CRM match by email", lambda c, lid: crm.lead_by_field(c, lid, "email", _email(7)), "leads_list_email_bidx"),
        ("CRM match by phone", lambda c, lid: crm.lead_by_field(c, lid, "phone", _phone(7)), "leads_list_phone_bidx"),
        (
            "search filter email = ...",
            lambda c, _: select_lead_ids(c, Selection.build(lists=["keys"], where=[f"email = {_email(7)}"]), USER),
            "leads_list_email_bidx",
        ),
        (
            "search for a whole address",
            lambda c, _: select_lead_ids(c, Selection.build(lists=["keys"], query=_email(7)), USER),
            "leads_list_email_bidx",
        ),
    ],
)
def test_lookups_by_email_or_phone_read_the_key_not_the_list(
    database_url: str, list_id: int, name: str, lookup: Callable[[Connection, int], Any], index: str
) -> None:
    with connect(database_url) as conn:
        read = _entries_read(conn, lambda: lookup(conn, list_id), index)
    assert 1 <= read <= 4, f"{name}: {read} entries of {index} read for one lead among {LEADS}"
