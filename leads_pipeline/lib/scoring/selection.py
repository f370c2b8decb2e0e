"""Which leads to score: a list, optionally narrowed to the ids in a file, recorded as a 'selection' batch.

A filter expression (``--where``, the search language) resolves to lead ids as well: plug it in by passing
its ids to ``create_selection`` exactly as ``--ids`` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from leads_pipeline.lib.batches import slug
from leads_pipeline.lib.errors import NotFoundError
from leads_pipeline.lib.store.scoring import create_selection_batch

_ID = re.compile(r"^\d{1,18}$")


def score_batch_key(label: str, now: datetime | None = None) -> str:
    """``score-<list>-<UTC time with microseconds>``: unique per launch and telling what was scored."""
    return f"score-{slug(label)}-{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%S%f')}"


def list_lead_ids(
    conn: psycopg.Connection[dict[str, Any]], list_id: int, only: Sequence[int] | None = None
) -> list[int]:
    """The live leads of a list, or of ``only`` those ids; an id outside the list is an error naming it."""
    if only is None:
        rows = conn.execute(
            "SELECT id FROM leads WHERE list_id = %s AND deleted_at IS NULL ORDER BY id", (list_id,)
        ).fetchall()
        return [int(r["id"]) for r in rows]
    wanted = sorted(set(only))
    rows = conn.execute(
        "SELECT id FROM leads WHERE list_id = %s AND deleted_at IS NULL AND id = ANY(%s) ORDER BY id",
        (list_id, wanted),
    ).fetchall()
    found = [int(r["id"]) for r in rows]
    missing = sorted(set(wanted) - set(found))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise NotFoundError(f"{len(missing)} lead id(s) are not live leads of the list: {shown}")
    return found


def create_selection(
    conn: psycopg.Connection[dict[str, Any]],
    lead_ids: Sequence[int],
    *,
    label: str,
    list_id: int | None,
    description: str,
    now: datetime | None = None,
) -> str:
    """Record the leads as a new selection batch and return its key (the Dagster partition to materialize)."""
    if not lead_ids:
        raise NotFoundError(f"nothing to score: the selection ({description}) has no live leads")
    batch_id = score_batch_key(label, now)
    create_selection_batch(conn, batch_id, lead_ids, list_id=list_id, description=description)
    return batch_id
