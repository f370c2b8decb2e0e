"""Checks on what the contact stages wrote for a batch: no "valid" email on a domain without mail DNS, every
stored phone in E.164, every accepted LinkedIn URL a profile URL."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import dagster as dg
import psycopg

EMAIL_MX_CHECK = "no_valid_email_without_mx"
PHONE_E164_CHECK = "phones_are_e164"
LINKEDIN_URL_CHECK = "linkedin_urls_are_profiles"

EMAIL_CHECK_SPECS = [
    dg.AssetCheckSpec(
        EMAIL_MX_CHECK,
        asset="email_contacts",
        description="No email of the batch is 'valid' while its domain has no MX (and no A-record fallback).",
    )
]
DNC_FRESH_CHECK = "dnc_list_is_fresh"
DNC_MAX_AGE_DAYS = 31

PHONE_CHECK_SPECS = [
    dg.AssetCheckSpec(
        PHONE_E164_CHECK,
        asset="phone_contacts",
        description="Every phone and mobile phone of the batch's leads is in E.164 (+ and 8-15 digits).",
    ),
    dg.AssetCheckSpec(
        DNC_FRESH_CHECK,
        asset="phone_contacts",
        description=f"The Do-Not-Call list the phones were checked against is at most {DNC_MAX_AGE_DAYS} days old.",
    ),
]
LINKEDIN_CHECK_SPECS = [
    dg.AssetCheckSpec(
        LINKEDIN_URL_CHECK,
        asset="linkedin_profiles",
        description="Every LinkedIn URL the batch accepted is a https://www.linkedin.com/in/<slug> profile URL.",
    )
]

_PREVIEW = 20


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """The first failing rows, by lead id and what is wrong, without a person's value: Dagster's event log is kept
    for ever, and these checks find what masking by shape leaves in clear (``mask`` finds well-formed addresses and
    numbers only: a number that is not E.164, a LinkedIn URL, which no erasure scrubs from Dagster's storage
    either). ``leads show ID --facts`` shows a list's members the values."""
    if not rows:
        return "none"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows[:_PREVIEW]]
    return "\n".join(lines)


def email_mx_check(conn: psycopg.Connection[dict[str, Any]], batch_id: str) -> dg.AssetCheckResult:
    rows = list(
        conn.execute(
            # the domain is the check's subject, kept in clear beside the sealed address, which is not read
            "SELECT f.lead_id, d.domain, d.mx_error FROM lead_facts f"
            " JOIN mail_domains d ON d.domain = f.details->>'email_domain'"
            " WHERE f.batch_id = %s AND f.field = 'email_status' AND f.value = 'valid'"
            " AND cardinality(d.mx_hosts) = 0 AND NOT d.fallback_a AND d.mx_checked_at IS NOT NULL",
            (batch_id,),
        )
    )
    return dg.AssetCheckResult(
        check_name=EMAIL_MX_CHECK,
        passed=not rows,
        metadata={
            "failing_emails": dg.MetadataValue.int(len(rows)),
            "failures": dg.MetadataValue.md(_table(rows, ["lead_id", "domain", "mx_error"])),
        },
    )


_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")


def _not_e164(number: str | None) -> bool:
    return number is not None and not _E164.match(number)


def phone_e164_check(conn: psycopg.Connection[dict[str, Any]], batch_id: str) -> dg.AssetCheckResult:
    # The numbers are sealed: read (opened as they load) and checked here, not in SQL.
    rows = [
        {"lead_id": r["lead_id"], "not_e164": ", ".join(c for c in ("phone", "mobile_phone") if _not_e164(r[c]))}
        for r in conn.execute(
            "SELECT l.id AS lead_id, l.phone, l.mobile_phone FROM batch_members m JOIN leads l ON l.id = m.lead_id"
            " WHERE m.batch_id = %s AND l.deleted_at IS NULL AND (l.phone IS NOT NULL OR l.mobile_phone IS NOT NULL)",
            (batch_id,),
        )
        if _not_e164(r["phone"]) or _not_e164(r["mobile_phone"])
    ]
    return dg.AssetCheckResult(
        check_name=PHONE_E164_CHECK,
        passed=not rows,
        metadata={
            "failing_leads": dg.MetadataValue.int(len(rows)),
            "failures": dg.MetadataValue.md(_table(rows, ["lead_id", "not_e164"])),
        },
    )


def linkedin_url_check(conn: psycopg.Connection[dict[str, Any]], batch_id: str) -> dg.AssetCheckResult:
    rows = list(
        conn.execute(
            "SELECT lead_id FROM lead_facts WHERE batch_id = %s AND field = 'linkedin_url'"
            " AND value IS NOT NULL AND value !~ '^https://www\\.linkedin\\.com/in/[^/?#]+/?$'",
            (batch_id,),
        )
    )
    return dg.AssetCheckResult(
        check_name=LINKEDIN_URL_CHECK,
        passed=not rows,
        metadata={
            "failing_urls": dg.MetadataValue.int(len(rows)),
            "failures": dg.MetadataValue.md(_table(rows, ["lead_id"])),
        },
    )


def dnc_fresh_check(snapshot: str | None, today: date | None = None) -> dg.AssetCheckResult:
    """A warning (not a failure) when no DNC list is loaded or the newest is older than 31 days: calling
    numbers checked against a stale list risks fines, but the phones themselves are fine."""
    today = today or date.today()
    age = (today - date.fromisoformat(snapshot)).days if snapshot else None
    fresh = age is not None and age <= DNC_MAX_AGE_DAYS
    if age is None:
        note = "no DNC list loaded: run `leads dnc import FILE`"
    else:
        note = f"snapshot of {snapshot} is {age} days old" + ("" if fresh else "; load a newer one")
    return dg.AssetCheckResult(
        check_name=DNC_FRESH_CHECK,
        passed=fresh,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"snapshot": dg.MetadataValue.text(snapshot or "none"), "note": dg.MetadataValue.text(note)},
    )
