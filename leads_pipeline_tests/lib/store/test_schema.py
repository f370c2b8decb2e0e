"""The migrated schema as a whole: properties every table must keep as tables are added."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.store.db import connect

pytestmark = pytest.mark.integration

_UNINDEXED_REFERENCES = """
SELECT c.conrelid::regclass::text AS child, pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c
WHERE c.contype = 'f' AND c.confrelid = 'leads'::regclass
  AND NOT EXISTS (
      SELECT 1 FROM pg_index i
      WHERE i.indrelid = c.conrelid AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] = c.conkey
  )
ORDER BY 1
"""


def test_every_table_referencing_leads_finds_a_leads_rows_by_an_index(database_url: str) -> None:
    """Deleting a lead looks up its rows in every table referencing it, once per lead. crm_conflicts had no index
    on lead_id (enrichment_failures and import_updates had it second in their keys), so each lookup read the whole
    table: deleting 20,000 leads beside 100,000 recorded conflicts took 201 s, and an import undo, a list purge or
    a retention run grew with the rows of every other lead."""
    with connect(database_url) as conn:
        unindexed = [f"{r['child']}: {r['definition']}" for r in conn.execute(_UNINDEXED_REFERENCES)]
    assert unindexed == []
