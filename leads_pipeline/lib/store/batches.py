"""A batch's leads: the leads its import created (``leads.created_by_import``) and those it touched otherwise
(``batch_leads``), together the ``batch_members`` view (sql/001)."""

from __future__ import annotations

from leads_pipeline.lib.errors import NotFoundError
from leads_pipeline.lib.store.lists import Connection


def batch_lead_ids(conn: Connection, batch_id: str) -> list[int]:
    """The live leads of a batch, by id, in ascending order."""
    if conn.execute("SELECT 1 FROM batches WHERE id = %s", (batch_id,)).fetchone() is None:
        raise NotFoundError(f"no batch {batch_id!r}; create it with `leads score --list NAME` or an import")
    rows = conn.execute(
        "SELECT DISTINCT m.lead_id FROM batch_members m JOIN leads l ON l.id = m.lead_id"
        " WHERE m.batch_id = %s AND l.deleted_at IS NULL ORDER BY m.lead_id",
        (batch_id,),
    )
    return [int(r["lead_id"]) for r in rows]
