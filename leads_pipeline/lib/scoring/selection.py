"""Which leads to score: a list, optionally narrowed to the ids in a file and by ``--where`` filters, recorded as a
'selection' batch by the search store (the filters run in SQL there, as they do for every other stage).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from leads_pipeline.lib.batches import slug
from leads_pipeline.lib.errors import NotFoundError
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.store.search import create_selection_batch

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
    selection: Selection,
    user: str,
    *,
    label: str,
    description: str,
    now: datetime | None = None,
) -> str:
    """Record the selection's leads as a new selection batch and return its key (the Dagster partition to
    materialize); a selection without live leads records nothing and says so."""
    batch_id = score_batch_key(label, now)
    with conn.transaction():
        _, count = create_selection_batch(conn, selection, user, description=description, batch_id=batch_id)
        if not count:
            raise NotFoundError(f"nothing to score: the selection ({description}) has no live leads")
    return batch_id
