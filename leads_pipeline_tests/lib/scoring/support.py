"""Helpers for the scoring tests: leads with chosen values written straight into a list."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from leads_pipeline.lib.store.lists import create_list
from leads_pipeline_tests.support import stored

Connection = psycopg.Connection[dict[str, Any]]

ICP = {
    "weights": {"dataCompleteness": 0, "companyFit": 50, "engagement": 50, "recency": 0},
    "thresholds": {"mql": 40, "sql": 80},
    "companyFit": {"industries": ["Computer Software"], "countries": ["US"]},
    "engagement": {
        "signals": [{"field": "custom.Visits", "steps": [{"min": 1, "points": 5}, {"min": 10, "points": 10}]}]
    },
}
"""Company fit (industry, country: 25 points each) and visits (25 points from 1, 50 from 10)."""


def add_leads(conn: Connection, rows: list[dict[str, Any]], list_name: str = "scoring") -> tuple[int, list[int]]:
    """Create the list if needed and insert one lead per row (``custom`` as a dict); returns (list id, lead ids)."""
    found = conn.execute("SELECT id FROM lists WHERE name = %s", (list_name,)).fetchone()
    list_id = found["id"] if found else create_list(conn, list_name, owner="tester").id
    ids = []
    for row in rows:
        values = stored(**row)  # emails, phones and street sealed, as the store writes them
        values["custom"] = json.dumps(values.get("custom", {}))
        columns = ", ".join(["list_id", *values])
        marks = ", ".join(["%s"] * (len(values) + 1))
        inserted = conn.execute(
            f"INSERT INTO leads ({columns}) VALUES ({marks}) RETURNING id",  # type: ignore[arg-type]
            (list_id, *values.values()),
        ).fetchone()
        assert inserted is not None
        ids.append(int(inserted["id"]))
    return list_id, ids
