"""The audit log: entries written in the action's transaction, masked contact data, append-only for everyone."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from leads_pipeline.lib.store import audit
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.migrations import apply_migrations
from leads_pipeline_tests.support import database_before


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


def test_the_selection_migration_leaves_out_the_values_compared_with_a_person(
    postgres_server: str, tmp_path: Path
) -> None:
    """sql/048 on selections recorded before Selection.describe left out personal values: her name in a
    batch's description and in an audit entry (append-only, rewritten by this migration only) is replaced, the
    rest (fields, operators, other values, import batches) is kept, and the log is append-only again."""
    descriptions = [
        ("selection", "list fair, where last_name = Garcia; country in ES, DE"),
        ("selection", "enrich email (standard): lists fair; first_name ~ Ana; custom.\"Met at\" = Jo Li; text 'ana g'"),
        ("selection", "all readable lists; email = <email>; email_domain = acme.es; notes is empty"),
        ("import", "import of /inbox/fair/last_name = Garcia.csv"),
    ]
    with database_before(postgres_server, 48, tmp_path) as url:
        with connect(url) as conn:
            for i, (kind, description) in enumerate(descriptions):
                conn.execute(
                    "INSERT INTO batches (id, kind, description) VALUES (%s, %s, %s)", (f"b{i}", kind, description)
                )
                audit.record(conn, "tester", "leads.export", "selection", {"selection": description, "to": "stdout"})
        assert 48 in apply_migrations(url)
        with connect(url) as conn:
            batches = [r["description"] for r in conn.execute("SELECT description FROM batches ORDER BY id")]
            entries = [e["details"] for e in sorted(audit.entries(conn), key=lambda e: e["id"])]
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute("DELETE FROM audit_log")
    expected = [
        "list fair, where last_name = <value>; country in ES, DE",
        'enrich email (standard): lists fair; first_name ~ <value>; custom."Met at" = <value>; text <value>',
        "all readable lists; email = <value>; email_domain = acme.es; notes is empty",
        "import of /inbox/fair/last_name = Garcia.csv",
    ]
    assert batches == expected
    assert [e["selection"] for e in entries] == [*expected[:3], descriptions[3][1]]
    assert all(e["to"] == "stdout" for e in entries)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("007.155.3406x553", "<phone>"),
        ("+1-809-862-5566x277", "<phone>"),
        ("call 555-123-4567 ext. 12 today", "call <phone> today"),
        ("555.509.8691 X 2329", "<phone>"),
        ("1920x1080 px", "1920x1080 px"),
        ("555-123-4567 x5", "<phone>"),
        ("555-123-4567 x123456", "<phone>"),
        ("555-123-4567 ext 12", "<phone>"),
        ("555-123-4567 extension 89", "<phone>"),
    ],
)
def test_masking_takes_a_phone_s_extension_with_it(text: str, masked: str) -> None:
    """An import's errors preview in Dagster showed the datablist number 007.155.3406x553 as <phone>.3406x553: the
    number's last digits and its extension in clear, which an erasure (scrubbing the number and the raw cell)
    then no longer found."""
    assert audit.mask(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("jane.doe@@acme.com", "<email>"),
        ("jane@acme@com", "<email>"),
        ("jane.doe@", "<email>"),
        ("to jane@acme.es, bob@acme.io; or Jo <jo@x.org>", "to <email>, <email>; or Jo <<email>>"),
        ("meet @ 5", "meet @ 5"),
    ],
)
def test_masking_takes_a_mistyped_email_whole(text: str, masked: str) -> None:
    """batch_leads' errors preview in the Dagster UI lists the rejected cells masked: the emails rejected for
    being mistyped (jane.doe@@acme.com), the values an import most often rejects, were shown in clear."""
    assert audit.mask(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "url: /v2/PhoneNumbers/%2B14155550100?Fields=line_type_intelligence",
            "url: /v2/PhoneNumbers/<phone>?Fields=line_type_intelligence",
        ),
        ("/v2/PhoneNumbers/%2b447911123456", "/v2/PhoneNumbers/<phone>"),
        ("a token A%2B1234567x stays", "a token A%2B1234567x stays"),
    ],
)
def test_masking_takes_a_url_encoded_number(text: str, masked: str) -> None:
    """A failed Twilio lookup's error quotes its request path, the number URL-encoded (%2B for +): the phone
    stage's log in Dagster's event log, and the job's failure reasons, kept the number in clear."""
    assert audit.mask(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("connection refused: 127.0.0.1:9", "connection refused: 127.0.0.1:9"),
        ("no route to 192.168.100.200:54321.", "no route to 192.168.100.200:54321."),
        ("at 2026-11-30T10:10:32.123456+00:00", "at 2026-11-30T10:10:32.123456+00:00"),
        ("lists demo-20261130-101032", "lists demo-20261130-101032"),
        ("inbox/fair_0612345678.csv", "inbox/fair_0612345678.csv"),
        ("lists demo-0612345678", "lists demo-0612345678"),
        ("lists 0612345678-demo", "lists 0612345678-demo"),
        ("call 5550100, not 555010", "call <phone>, not 555010"),  # 7 digits make a phone number, 6 do not
        ("(415) 555-0100 or +1 (415) 555-0101", "<phone> or <phone>"),
        ("tel:+14155550100, 06 12 34 56 78", "tel:<phone>, <phone>"),
    ],
)
def test_masking_leaves_addresses_dates_and_names_alone(text: str, masked: str) -> None:
    """An IP address in a connection error became <phone> (127.0.0.1:9), and so did a date-stamped list name in
    the audit log (lists demo-<phone>): the masking keeps what is not a phone number and still takes the numbers
    written with brackets whole (before: (<phone>)."""
    assert audit.mask(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("created_at >= 2026-03-01", "created_at >= 2026-03-01"),
        ("at 2026-01-05", "at 2026-01-05"),
        ("2026-12-15 23:59:59.123456 and 2026-12-31T00:00", "2026-12-15 23:59:59.123456 and 2026-12-31T00:00"),
        ("on 1999-12-31 call 555-123-4567", "on 1999-12-31 call <phone>"),
        ("run 20261130-101032", "run 20261130-101032"),
        ("run 19991215-235959 done", "run 19991215-235959 done"),
        ("at 20260105090000", "at 20260105090000"),
        ("host 10.0.0.1 port", "host 10.0.0.1 port"),
        ("dns 8.8.8.8:53", "dns 8.8.8.8:53"),
        ("255.255.255.255:65535", "255.255.255.255:65535"),
        ("on 2026-13-01", "on <phone>"),  # no month 13: digits like a phone's
    ],
)
def test_masking_keeps_every_day_time_and_address(text: str, masked: str) -> None:
    """A selection's dates (``created_at >= 2026-03-01``) and a run's timestamps are what the audit log is read
    by: any day of any month, any hour, either century, and every IPv4 address stay as they are."""
    assert audit.mask(text) == masked


def test_masking_keeps_the_list_names_given_whole() -> None:
    text = "lists list 1 0612345678, list 1; phone = 0612345679"
    keep = ["list 1", "list 1 0612345678", ""]
    assert audit.mask(text, keep=keep) == "lists list 1 0612345678, list 1; phone = <phone>"
    assert audit.mask(text) == "lists list <phone>, list 1; phone = <phone>"


def test_the_lists_an_action_was_on_are_recorded_in_clear(database_url: str) -> None:
    with connect(database_url) as conn:
        audit.record(
            conn,
            "ana",
            "leads.export",
            "selection",
            {"selection": "lists 0612345678, fair; phone = 0612345679", "name": "0612345678"},
            lists=["0612345678"],
        )
        [entry] = audit.entries(conn)
    assert entry["details"] == {"selection": "lists 0612345678, fair; phone = <phone>", "name": "0612345678"}
