"""The contact checks' failure tables, which Dagster's event log keeps for ever: lead ids and what is wrong, never
the person's value, which is what a failing check would otherwise show in clear."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from leads_pipeline.defs.contacts.checks import email_mx_check, linkedin_url_check, phone_e164_check
from leads_pipeline.lib.store.contacts import update_lead_columns
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline_tests.support import import_text

BATCH = "contact-checks"


def _failures(result: dg.AssetCheckResult) -> str:
    table = result.metadata["failures"]
    assert isinstance(table, dg.MarkdownMetadataValue)
    return str(table.md_str)


def _batch(database_url: str, tmp_path: Path) -> list[int]:
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
    import_text(
        database_url,
        tmp_path / "leads.csv",
        "First Name,Last Name,Company,Email,Phone\n"
        "Ana,Garcia,Acme,ana.garcia@nomx.example,+14155550100\n"
        "Bob,Jones,Widgets,bob@widgets.example,+14155550111\n",
        batch_id=BATCH,
    )
    with connect(database_url) as conn:
        return [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id")]


def test_a_failing_check_names_the_leads_and_what_is_wrong_without_their_values(
    database_url: str, tmp_path: Path
) -> None:
    """The phone and LinkedIn checks listed the failing values through ``mask``, which finds well-formed numbers
    only: the numbers that are not E.164 and every LinkedIn URL (a person's slug, which no erasure scrubs from
    Dagster's storage) were shown in clear in the UI, exactly when the check failed."""
    ana, bob = _batch(database_url, tmp_path)
    with connect(database_url) as conn:
        update_lead_columns(conn, "phone", {ana: "4155550100x"}, overwrite=True)
        update_lead_columns(conn, "mobile_phone", {bob: "0151 2345 6789"}, overwrite=True)
        conn.execute(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence, batch_id) VALUES"
            " (%s, 'linkedin_url', 'https://www.linkedin.com/company/ana-garcia-7b1a', 'apify', 80, %s)",
            (ana, BATCH),
        )
        conn.execute(
            "INSERT INTO mail_domains (domain, mx_error, mx_checked_at) VALUES ('nomx.example', 'NXDOMAIN', now())"
        )
        conn.execute(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence, batch_id, details) VALUES"
            " (%s, 'email_status', 'valid', 'smtp', 90, %s, '{\"email_domain\": \"nomx.example\"}')",
            (ana, BATCH),
        )
        phones, linkedin, emails = (
            phone_e164_check(conn, BATCH),
            linkedin_url_check(conn, BATCH),
            email_mx_check(conn, BATCH),
        )

    assert not phones.passed and not linkedin.passed and not emails.passed
    shown = "\n".join(map(_failures, (phones, linkedin, emails)))
    for value in ("4155550100", "0151", "6789", "ana-garcia", "linkedin.com", "ana.garcia"):
        assert value not in shown
    assert f"| {ana} | phone |" in _failures(phones)
    assert f"| {bob} | mobile_phone |" in _failures(phones), "which of the lead's numbers is not E.164"
    assert f"| {ana} |" in _failures(linkedin)
    assert f"| {ana} | nomx.example | NXDOMAIN |" in _failures(emails), "the domain without MX is the finding"
