"""The import checks on what is stored: they pass on a clean import and fail, naming the lead, on bad data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from leads_pipeline.defs.imports.checks import (
    DUPLICATES_CHECK,
    SCHEMA_CHECK,
    no_duplicates_check,
    stored_leads_check,
)
from leads_pipeline.lib import stored_check
from leads_pipeline.lib.prepare import DedupeKey
from leads_pipeline.lib.privacy.crypto import keyring
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.frames import newest_lead_id
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.stored_check import CheckedLeads, MergedLeadsCheck
from leads_pipeline_tests.support import bidx, import_file, set_clause, stored

ROWS = [
    ("Email", "Phone", "First Name", "Last Name", "Company"),
    ("ann@example.com", "+1 415 555 0101", "Ann", "Lee", "Acme"),
    ("bob@example.com", "+1 415 555 0102", "Bob", "Ng", "Acme"),
    ("cy@example.com", "+1 415 555 0103", "Cy", "Ito", "Globex"),
]


def _imported(database_url: str, tmp_path: Path, dedupe: DedupeKey = "email") -> tuple[int, str]:
    """A list with three clean leads imported as one batch: (list id, batch id)."""
    path = tmp_path / "clean.csv"
    path.write_text("\n".join(",".join(row) for row in ROWS) + "\n", encoding="utf-8")
    with connect(database_url) as conn:
        list_id = create_list(conn, "checked", owner="tester", dedupe=dedupe).id
    status = import_file(database_url, path, "checked", batch_id="batch-checked")
    assert status["results"]["imported"] == 3
    return list_id, "batch-checked"


def _execute(database_url: str, query: str, params: tuple[Any, ...] = ()) -> int:
    """Run one statement and return the id of the first affected lead."""
    with connect(database_url) as conn:
        row = conn.execute(query, params).fetchone()
        assert row is not None
        return int(row["id"])


def _edit_lead(database_url: str, lead_email: str, **fields: str) -> int:
    """Store ``fields`` on the lead with ``lead_email`` as a later edit would (sealed, keyed); its id."""
    assignments, params = set_clause(**fields)
    return _execute(
        database_url, f"UPDATE leads SET {assignments} WHERE email_bidx = %s RETURNING id", (*params, bidx(lead_email))
    )


def test_checks_pass_on_a_clean_import(database_url: str, tmp_path: Path) -> None:
    list_id, batch_id = _imported(database_url, tmp_path)
    with connect(database_url) as conn:
        schema = stored_leads_check(conn, batch_id)
        duplicates = no_duplicates_check(conn, list_id, "email")
    assert (schema.check_name, schema.passed) == (SCHEMA_CHECK, True)
    assert schema.metadata["leads_checked"].value == 3
    assert (duplicates.check_name, duplicates.passed) == (DUPLICATES_CHECK, True)


def _checked_after_edit(
    database_url: str, tmp_path: Path, lead_email: str, **fields: str
) -> tuple[int, dg.AssetCheckResult]:
    """The schema check of an imported batch after the lead with ``lead_email`` was edited to ``fields`` (as
    stored)."""
    _, batch_id = _imported(database_url, tmp_path)
    bad = _edit_lead(database_url, lead_email, **fields)
    with connect(database_url) as conn:
        return bad, stored_leads_check(conn, batch_id)


def test_schema_check_fails_on_an_invalid_email_naming_the_lead_and_column(database_url: str, tmp_path: Path) -> None:
    bad, result = _checked_after_edit(database_url, tmp_path, "bob@example.com", email="not-an-email")
    assert result.passed is False
    assert result.metadata["failing_leads"].value == 1
    assert result.metadata["failing_columns"].value == "email"
    failures = str(result.metadata["failures"].value)
    assert f"| {bad} | email | <value> |" in failures and "not-an-email" not in failures
    assert "expected an email address" in failures


def test_schema_check_hides_the_contact_data_it_shows(database_url: str, tmp_path: Path) -> None:
    """The preview showed a failing stored value as it is: an address with a space in it (from a later edit of
    the lead) was written in clear into Dagster's event log, where every other preview masks them; a LinkedIn URL
    without its domain's dot, which masking does not recognise, still was. A person's values are hidden."""
    bad, result = _checked_after_edit(
        database_url, tmp_path, "bob@example.com", email="bob ng@example.com", linkedin_url="https://linkedin/in/bob-ng"
    )
    assert result.passed is False and result.metadata["failing_columns"].value == "email, linkedin_url"
    failures = str(result.metadata["failures"].value)
    assert f"| {bad} | email | <value> |" in failures and f"| {bad} | linkedin_url | <value> |" in failures
    assert "bob" not in failures


def test_schema_check_fails_on_a_bad_phone_and_website(database_url: str, tmp_path: Path) -> None:
    bad, result = _checked_after_edit(
        database_url, tmp_path, "ann@example.com", phone="555-0101", website="http://example.com/x"
    )
    assert result.passed is False
    assert result.metadata["failing_leads"].value == 1
    assert result.metadata["failing_columns"].value == "phone, website"
    failures = str(result.metadata["failures"].value)
    assert f"| {bad} | phone | <value> |" in failures, "the number is hidden in Dagster's event log"
    assert "555-0101" not in failures and f"| {bad} | website | http://example.com/x |" in failures


def test_schema_check_fails_on_a_lead_with_no_identity(database_url: str, tmp_path: Path) -> None:
    """A stored lead with nothing to reach or identify it by (every identity field empty) breaks the rule the
    import enforces; the check must report it as a row failure."""
    _, batch_id = _imported(database_url, tmp_path)
    bad = _execute(
        database_url,
        "UPDATE leads SET email = NULL, email_bidx = NULL, phone = NULL, phone_bidx = NULL, first_name = NULL,"
        " last_name = NULL, full_name = NULL, company = NULL, company_key = NULL, name_key = NULL"
        " WHERE email_bidx = %s RETURNING id",
        (bidx("cy@example.com"),),
    )
    with connect(database_url) as conn:
        result = stored_leads_check(conn, batch_id)
    assert result.passed is False
    assert result.metadata["failing_leads"].value == 1
    assert f"| {bad} | (row) |" in str(result.metadata["failures"].value)


def test_schema_check_only_looks_at_the_batch(database_url: str, tmp_path: Path) -> None:
    list_id, batch_id = _imported(database_url, tmp_path)
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO leads (list_id, email, email_bidx) VALUES (%s, %s, %s)",
            (list_id, *stored(email="outside-the-batch").values())[:3],
        )
        result = stored_leads_check(conn, batch_id)
    assert result.passed is True
    assert result.metadata["leads_checked"].value == 3


def _imported_and_checked(database_url: str, tmp_path: Path) -> tuple[str, CheckedLeads]:
    """The clean file imported a row a chunk on two workers, each chunk's leads checked on them as it merged."""
    path = tmp_path / "clean.csv"
    path.write_text("\n".join(",".join(row) for row in ROWS) + "\n", encoding="utf-8")
    with connect(database_url) as conn:
        create_list(conn, "checked", owner="tester")
    with MergedLeadsCheck(database_url, "batch-checked") as merged:
        status = import_file(
            database_url, path, "checked", batch_id="batch-checked", workers=2, chunk_rows=1, after_merge=merged.merged
        )
        assert status["results"]["imported"] == 3
        return "batch-checked", merged.checked()


def test_leads_checked_as_their_chunks_merged_are_not_read_again(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leads of each chunk are checked as it commits, while the merges keep the import's backend busy: the
    check at the end reads none of them again while their stored rows are the ones checked (1M leads: ~6 CPU-s
    of the importing process beside the index builds)."""
    batch_id, checked = _imported_and_checked(database_url, tmp_path)
    assert len(checked.versions) == 3 and not checked.failures

    def read_again(*_: object, **__: object) -> None:
        raise AssertionError("a lead checked as its chunk merged was read again")

    monkeypatch.setattr(stored_check, "batch_lead_frames", read_again)
    with connect(database_url) as conn:
        result = stored_leads_check(conn, batch_id, checked)
    assert result.passed is True
    assert result.metadata["leads_checked"].value == 3


def test_a_lead_edited_after_its_chunk_was_checked_fails_the_check(database_url: str, tmp_path: Path) -> None:
    """What the check reports is what is stored at its end, not what its chunk's check read."""
    batch_id, checked = _imported_and_checked(database_url, tmp_path)
    bad = _edit_lead(database_url, "bob@example.com", email="not-an-email")
    with connect(database_url) as conn:
        result = stored_leads_check(conn, batch_id, checked)
    assert result.passed is False
    assert result.metadata["leads_checked"].value == 3
    assert f"| {bad} | email | <value> |" in str(result.metadata["failures"].value)


def test_a_failure_found_early_stands_until_the_lead_is_fixed(database_url: str, tmp_path: Path) -> None:
    _, batch_id = _imported(database_url, tmp_path)
    bad = _edit_lead(database_url, "ann@example.com", phone="555-0101")
    with connect(database_url) as conn:
        checked = stored_check.check_created_between(database_url, batch_id, 0, newest_lead_id(conn), keyring())
        failed = stored_leads_check(conn, batch_id, checked)
    assert failed.passed is False and f"| {bad} | phone | <value> |" in str(failed.metadata["failures"].value)
    assignments, params = set_clause(phone="+14155550101")
    _execute(database_url, f"UPDATE leads SET {assignments} WHERE id = %s RETURNING id", (*params, bad))
    with connect(database_url) as conn:
        assert stored_leads_check(conn, batch_id, checked).passed is True


def test_a_lead_the_batch_did_not_create_is_checked_at_the_end(database_url: str, tmp_path: Path) -> None:
    """A lead the import matched (a ``batch_leads`` member) is not among those checked as chunks merged."""
    batch_id, checked = _imported_and_checked(database_url, tmp_path)
    with connect(database_url) as conn:
        list_id = conn.execute("SELECT id FROM lists WHERE name = 'checked'").fetchone()["id"]  # type: ignore[index]
        columns = stored(email="matched@example.com", phone="555-0199")
        row = conn.execute(
            f"INSERT INTO leads (list_id, {', '.join(columns)}) VALUES (%s, {', '.join(['%s'] * len(columns))})"
            " RETURNING id",
            (list_id, *columns.values()),
        ).fetchone()
        assert row is not None
        conn.execute("INSERT INTO batch_leads (batch_id, lead_id) VALUES (%s, %s)", (batch_id, row["id"]))
        result = stored_leads_check(conn, batch_id, checked)
    assert result.passed is False
    assert result.metadata["leads_checked"].value == 4
    assert f"| {row['id']} | phone | <value> |" in str(result.metadata["failures"].value)


@pytest.mark.parametrize(
    ("dedupe", "column", "value"),
    [("email", "email", "ann@example.com"), ("phone", "phone", "+14155550101"), ("both", "phone", "+14155550101")],
)
def test_duplicates_check_fails_naming_the_key_value_and_leads(
    database_url: str, tmp_path: Path, dedupe: DedupeKey, column: str, value: str
) -> None:
    list_id, _ = _imported(database_url, tmp_path, dedupe)
    with connect(database_url) as conn:
        [first] = conn.execute(f"SELECT id FROM leads WHERE {column}_bidx = %s", (bidx(value, column),)).fetchall()
    duplicate = _edit_lead(database_url, "cy@example.com", **{column: value})
    with connect(database_url) as conn:
        result = no_duplicates_check(conn, list_id, dedupe)
    assert result.passed is False
    assert result.metadata["dedupe_setting"].value == dedupe
    assert result.metadata["duplicate_groups"].value == 1
    # the value is masked: Dagster's event log must not hold the addresses the database keeps sealed
    assert f"| {column} | <{column}> | {first['id']}, {duplicate} |" in str(result.metadata["groups"].value)


def test_duplicates_check_ignores_keys_outside_the_dedupe_setting_and_deleted_leads(
    database_url: str, tmp_path: Path
) -> None:
    list_id, _ = _imported(database_url, tmp_path, "email")
    with connect(database_url) as conn:
        assignments, params = set_clause(phone="+14155550101")
        conn.execute(f"UPDATE leads SET {assignments}", params)  # same phone everywhere: fine for an email list
        columns = stored(email="ann@example.com")
        conn.execute(
            f"INSERT INTO leads (list_id, deleted_at, {', '.join(columns)}) VALUES (%s, now(), %s, %s, %s)",
            (list_id, *columns.values()),
        )
        result = no_duplicates_check(conn, list_id, "email")
    assert result.passed is True
