"""Checks on what an import stored: the stored-lead schema, and no duplicate left in the list."""

from __future__ import annotations

from typing import Any

import dagster as dg
import psycopg
from psycopg import sql

from leads_pipeline.lib.fields import MAPPED_FIELDS, MATCH_COLUMNS, MATCH_KEYS, PHONE_EXTENSIONS, DedupeKey
from leads_pipeline.lib.filters import HIDDEN, PERSONAL
from leads_pipeline.lib.store.audit import mask
from leads_pipeline.lib.store.db import key_column
from leads_pipeline.lib.stored_check import CheckedLeads, stored_failures

SCHEMA_CHECK = "stored_leads_match_schema"
DUPLICATES_CHECK = "no_duplicate_leads_in_list"

CHECK_SPECS = [
    dg.AssetCheckSpec(
        SCHEMA_CHECK,
        asset="batch_leads",
        description="Every lead the batch wrote passes the stored-lead pandera schema.",
    ),
    dg.AssetCheckSpec(
        DUPLICATES_CHECK,
        asset="batch_leads",
        description="No two live leads of the batch's list share a key of the list's dedupe setting.",
    ),
]

_PREVIEW_ROWS = 20


def preview_value(field: str | None, value: object) -> str:
    """``value`` of a lead's ``field`` as a preview in Dagster's metadata shows it. Dagster's event log is kept for
    ever and no erasure reaches it, so a value of a field that names or reaches a person (``PERSONAL``, a phone's
    extension), of a custom column (it may hold anything) or of no field (a whole row) is hidden whatever its
    shape: ``mask`` finds only well-formed addresses and numbers, and left a malformed phone (``4155550100x``) or a
    LinkedIn URL in clear. Other fields' values are shown, masked by shape. ``leads imports errors`` shows the
    list's members every value, to fix the row."""
    if field is None or field not in MAPPED_FIELDS or field in PERSONAL or field in PHONE_EXTENSIONS.values():
        return HIDDEN
    return mask(str(value or ""))


def stored_leads_check(
    conn: psycopg.Connection[dict[str, Any]], batch_id: str, checked: CheckedLeads | None = None
) -> dg.AssetCheckResult:
    """Run the stored-lead schema on the leads of ``batch_id`` as they are in the database now; those ``checked``
    as their chunk committed (``stored_check.MergedLeadsCheck``) are read again only if their stored row changed."""
    leads, failures = stored_failures(conn, batch_id, checked)
    failing_ids = sorted({int(f.index) for f in failures})  # type: ignore[call-overload]
    preview = "\n".join(
        # masked as the other previews are: the values are the stored leads' (sealed in the database), read again
        # whenever the batch is materialized, after any later edit of its leads
        f"| {f.index} | {f.column or '(row)'} | {preview_value(f.column, f.value)} | {f.reason} |"
        for f in failures[:_PREVIEW_ROWS]
    )
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=not failures,
        metadata={
            "leads_checked": dg.MetadataValue.int(leads),
            "failing_leads": dg.MetadataValue.int(len(failing_ids)),
            # "none", as the failures beside it say: an empty text read in the UI as a value not loaded
            "failing_columns": dg.MetadataValue.text(
                ", ".join(sorted({f.column or "(row)" for f in failures})) or "none"
            ),
            "failures": dg.MetadataValue.md(
                "| lead | column | value | reason |\n|---|---|---|---|\n" + preview if failures else "none"
            ),
        },
    )


def duplicate_groups(conn: psycopg.Connection[dict[str, Any]], list_id: int, dedupe: DedupeKey) -> list[dict[str, Any]]:
    """Groups of live leads in the list sharing a dedupe key: (key, value, lead ids)."""
    # Sealed keys group by their blind index; the value (opened as it loads) is one of the group.
    columns = {key: MATCH_COLUMNS.get(key, key) for key in MATCH_KEYS[dedupe]}
    queries = [
        sql.SQL(
            "SELECT {name} AS key, min({value}) AS value, array_agg(id ORDER BY id) AS lead_ids FROM leads"
            " WHERE list_id = {list} AND deleted_at IS NULL AND {col} IS NOT NULL"
            " GROUP BY {grouped} HAVING count(*) > 1"
        ).format(
            name=sql.Literal(key),
            value=sql.Identifier(key),
            col=sql.Identifier(column),
            grouped=key_column(column),
            list=sql.Literal(list_id),
        )
        for key, column in columns.items()
    ]
    # The list's leads are read in one pass over their pages (a bitmap of the key index: PostgreSQL 18 plans a
    # Bitmap Index Scan of leads_list_email_bidx or _phone_bidx and a Bitmap Heap Scan, 100k leads in 0.17 s; no
    # index-only scan can serve the query, whose ids and values are in the table's rows) and sorted, not by
    # walking the key index and fetching every lead from the heap at random (1M leads: 1.3 s against 2.2 s),
    # nor by reading the whole table (a scan of it or of its primary key), which the planner prefers when the list
    # is a tenth of it (1M of 10M leads: 4.0 s, and growing with every other list). Blind indexes are hex, so they
    # are sorted bytewise ("C"): the database's collation took 1.6 s of a 1M-key sort for the same groups. One
    # process: the check runs beside the import's index build, and parallel workers tripled its CPU (~3 s).
    with conn.transaction():
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_indexscan = off")
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        return list(conn.execute(sql.SQL(" UNION ALL ").join(queries) + sql.SQL(" LIMIT 1000")))


def no_duplicates_check(
    conn: psycopg.Connection[dict[str, Any]], list_id: int, dedupe: DedupeKey
) -> dg.AssetCheckResult:
    groups = duplicate_groups(conn, list_id, dedupe)
    preview = "\n".join(
        # masked: the database keeps the addresses sealed, Dagster's event log beside it must not show them
        f"| {g['key']} | {mask(g['value'])} | {', '.join(map(str, g['lead_ids']))} |"
        for g in groups[:_PREVIEW_ROWS]
    )
    return dg.AssetCheckResult(
        check_name=DUPLICATES_CHECK,
        passed=not groups,
        metadata={
            "dedupe_setting": dg.MetadataValue.text(dedupe),
            "duplicate_groups": dg.MetadataValue.int(len(groups)),
            "groups": dg.MetadataValue.md("| key | value | leads |\n|---|---|---|\n" + preview if groups else "none"),
        },
    )
