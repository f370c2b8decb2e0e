"""Checks on what company enrichment stored: facts that validate, and a job within its credit cap."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd
import pandera.pandas as pa
import psycopg

from leads_pipeline.lib.enrichment.providers import COMPANY_FIELDS
from leads_pipeline.lib.store import enrichment as store

FACTS_CHECK = "company_facts_valid"
BUDGET_CHECK = "job_within_max_credits"

CHECK_SPECS = [
    dg.AssetCheckSpec(
        FACTS_CHECK,
        asset="company_profiles",
        description="Every company fact of the batch names a company field, has a value in that field's format, "
        "a confidence from 0 to 100 and a cost >= 0.",
    ),
    dg.AssetCheckSpec(
        BUDGET_CHECK,
        asset="company_profiles",
        description="The job's credits used (sum of its facts' costs) do not exceed its --max-credits.",
    ),
]

_DOMAIN = r"^[a-z0-9\u00a0-\uffff]([a-z0-9\u00a0-\uffff-]*[a-z0-9\u00a0-\uffff])?(\.[a-z0-9\u00a0-\uffff-]+)+$"
_FORMATS = {
    "website": _DOMAIN,
    "company_domain": _DOMAIN,
    "employee_count": r"^[1-9][0-9]*$",
    "annual_revenue": r"^[0-9]+(\.[0-9]+)?$",
    "hq_country": r"^[A-Z]{2}$",
    "company_linkedin_url": r"^https://www\.linkedin\.com/company/[^/\s]+$",
    "technologies": r"^\[.*\]$",
}


def _format_ok(frame: pd.DataFrame) -> pd.Series:
    ok = pd.Series(True, index=frame.index)
    for field, pattern in _FORMATS.items():
        rows = frame["field"] == field
        ok[rows] = frame.loc[rows, "value"].astype("string").str.match(pattern).fillna(False).astype(bool)
    return ok


SCHEMA = pa.DataFrameSchema(
    {
        "lead_id": pa.Column(int),
        "field": pa.Column(str, pa.Check.isin(COMPANY_FIELDS)),
        "value": pa.Column(str, nullable=False),
        "confidence": pa.Column(int, pa.Check.in_range(0, 100)),
        "cost": pa.Column(float, pa.Check.ge(0)),
    },
    checks=[pa.Check(_format_ok, element_wise=False, error="value not in the field's format")],
    coerce=True,
)


def facts_check(conn: psycopg.Connection[dict[str, Any]], batch_id: str) -> dg.AssetCheckResult:
    rows = list(
        conn.execute(
            """SELECT lead_id, field, value, confidence, cost::float8 AS cost FROM lead_facts
               WHERE batch_id = %s AND source LIKE %s""",
            (batch_id, store.COMPANY_SOURCE_PREFIX + "%"),
        )
    )
    frame = pd.DataFrame(rows, columns=["lead_id", "field", "value", "confidence", "cost"])
    failures = pd.DataFrame()
    try:
        SCHEMA.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases
    preview = "none"
    if not failures.empty:
        lines = ["| column | check | value |", "|---|---|---|"]
        lines += [f"| {r.column} | {r.check} | {r.failure_case} |" for r in failures.head(20).itertuples()]
        preview = "\n".join(lines)
    return dg.AssetCheckResult(
        check_name=FACTS_CHECK,
        passed=failures.empty,
        metadata={
            "facts_checked": dg.MetadataValue.int(len(frame)),
            "failures": dg.MetadataValue.int(len(failures)),
            "failure_cases": dg.MetadataValue.md(preview),
        },
    )


def budget_check(conn: psycopg.Connection[dict[str, Any]], job: store.Job) -> dg.AssetCheckResult:
    used = store.credits_used(conn, job.id)
    cap = job.max_credits
    return dg.AssetCheckResult(
        check_name=BUDGET_CHECK,
        passed=cap is None or used <= cap + 1e-9,
        metadata={
            "credits_used": dg.MetadataValue.float(used),
            "max_credits": dg.MetadataValue.float(cap) if cap is not None else dg.MetadataValue.text("unlimited"),
        },
    )
