"""A batch's leads, by id and in chunks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leads_pipeline.lib.errors import NotFoundError
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.scoring.selection import create_selection
from leads_pipeline.lib.store.batches import batch_lead_ids
from leads_pipeline.lib.store.contacts import batch_lead_chunks
from leads_pipeline.lib.store.db import connect
from leads_pipeline_tests.lib.scoring.support import add_leads

pytestmark = pytest.mark.integration


def test_a_batch_comes_in_chunks_of_its_live_leads_in_id_order(database_url: str) -> None:
    with connect(database_url) as conn:
        _, ids = add_leads(conn, [{"first_name": f"lead {i}"} for i in range(8)], list_name="chunked")
        add_leads(conn, [{"first_name": "not in the batch"}], list_name="chunked")
        chosen = Selection(lists=("chunked",), ids=tuple(ids[:7]))
        batch = create_selection(conn, chosen, "tester", label="chunked", description="test", now=datetime.now(UTC))
        conn.execute("UPDATE leads SET deleted_at = now() WHERE id = %s", (ids[1],))
        assert batch_lead_ids(conn, batch) == [ids[0], *ids[2:7]]

        chunks = batch_lead_chunks(conn, batch, chunk_size=2)
        first = next(chunks)
        conn.execute("UPDATE leads SET deleted_at = now() WHERE id = %s", (ids[5],))  # while the batch is read
        rest = list(chunks)
        assert [[r["id"] for r in c] for c in [first, *rest]] == [[ids[0], ids[2]], [ids[3], ids[4]], [ids[6]]]
        assert first[0]["first_name"] == "lead 0"
        with pytest.raises(NotFoundError, match="no batch 'nope'"):
            batch_lead_ids(conn, "nope")
