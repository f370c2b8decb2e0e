"""The audit log: entries written in the action's transaction, masked contact data, append-only for everyone."""

from __future__ import annotations

import psycopg
import pytest

from leads_pipeline.lib.store import audit
from leads_pipeline.lib.store.db import connect


def test_record_masks_contact_data_and_keeps_lead_ids(database_url: str) -> None:
    with connect(database_url) as conn:
        audit.record(
            conn,
            "ana",
            "leads.export",
            "selection",
            {"selection": "email = ana.garcia@acme.es, phone ~ +34 912 345 678", **audit.lead_ids([3, 1])},
        )
        [entry] = audit.entries(conn)
    assert entry["details"]["selection"] == "email = <email>, phone ~ <phone>"
    assert (entry["details"]["leadIds"], entry["details"]["leadCount"]) == ([1, 3], 2)
    with connect(database_url) as conn:
        assert [e["id"] for e in audit.entries(conn, lead_ids_any=[3])] == [entry["id"]]
        assert audit.entries(conn, lead_ids_any=[2]) == []
        assert [e["action"] for e in audit.entries(conn, action="leads")] == ["leads.export"]
        assert audit.entries(conn, action="lead") == [], "a family matches whole dotted parts only"


def test_an_entry_rolls_back_with_its_action(database_url: str) -> None:
    with pytest.raises(RuntimeError), connect(database_url) as conn:
        audit.record(conn, "ana", "list.delete", "list:1")
        raise RuntimeError("the action failed")
    with connect(database_url) as conn:
        assert audit.entries(conn) == []


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log", "TRUNCATE audit_log"]
)
def test_the_log_is_append_only_even_for_its_owner(database_url: str, statement: str) -> None:
    with connect(database_url) as conn:
        audit.record(conn, "ana", "list.share", "list:1", {"user": "bob"})
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"), connect(database_url) as conn:
        conn.execute(statement)  # type: ignore[arg-type]
    with connect(database_url) as conn:
        assert [e["actor"] for e in audit.entries(conn)] == ["ana"]


def test_masking_leaves_hashes_and_record_ids_whole(database_url: str) -> None:
    subject = "5da8473fd7c5ef5d59f59c9ec81d8dea781b336e412d3fa7b5b11179214aac7e"  # digit runs inside hex
    with connect(database_url) as conn:
        audit.record(
            conn, "ana", "privacy.delete", f"subject:{subject}", {"subject": subject, "note": "tel 0612345678"}
        )
        [entry] = audit.entries(conn, subject=subject)
    assert (entry["object"], entry["details"]["subject"]) == (f"subject:{subject}", subject)
    assert entry["details"]["note"] == "tel <phone>"
