"""Lead lists as stored: listing them with their lead counts."""

from __future__ import annotations

import unicodedata

import pytest

from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list, find_lists
from leads_pipeline.lib.store.migrations import sql_dir
from leads_pipeline_tests.lib.scoring.support import add_leads

pytestmark = pytest.mark.integration


def test_lists_are_counted_in_one_pass_over_the_leads(database_url: str) -> None:
    """`leads lists ls` counted each list's leads with a scan of every lead, once a list: 12 lists beside 200,000
    leads took 1.3 s, and a team's 50 lists beside 1M leads half a minute. One pass counts them all (0.11 s)."""
    with connect(database_url) as conn:
        add_leads(conn, [{"first_name": f"a{i}"} for i in range(3)], list_name="a")
        _, b_ids = add_leads(conn, [{"first_name": f"b{i}"} for i in range(2)], list_name="b")
        conn.execute("UPDATE leads SET deleted_at = now() WHERE id = %s", (b_ids[0],))
        for name in ("c", "d", "e"):
            create_list(conn, name, owner="tester")
        ids = [int(r["id"]) for r in conn.execute("SELECT id FROM lists")]

        def scans() -> int:
            row = conn.execute(
                "SELECT seq_scan + coalesce(idx_scan, 0) AS n FROM pg_stat_xact_user_tables"
                " WHERE relid = 'leads'::regclass"
            ).fetchone()
            return int(row["n"]) if row else 0

        before = scans()
        found = find_lists(conn, ids)
        assert scans() - before == 1
    assert [(lst.name, count) for lst, count in found] == [("a", 3), ("b", 1), ("c", 0), ("d", 0), ("e", 0)]


def test_tags_and_folders_stored_decomposed_before_are_composed_by_the_migration(database_url: str) -> None:
    """Tags and folders are composed (NFC) as they are written since 102fb40; those stored before were left as
    typed, so "Müller" written decomposed stayed a tag apart from the composed one, and a search by either missed
    the other's leads. sql/248 composes them: a lead with both keeps one tag, a list's tags keep their order."""
    composed, decomposed = "Müller", unicodedata.normalize("NFD", "Müller")
    with connect(database_url) as conn:
        list_id, (both, one) = add_leads(conn, [{"first_name": "Ana"}, {"first_name": "Bo"}], list_name="a")
        conn.execute(
            "UPDATE lists SET tags = %s, folder = %s WHERE id = %s",
            ([decomposed, "vip", composed], f"Kunden/{decomposed}", list_id),
        )
        conn.execute(
            "INSERT INTO lead_tags (lead_id, tag) VALUES (%s, %s), (%s, %s), (%s, %s), (%s, 'vip')",
            (both, decomposed, both, composed, one, decomposed, one),
        )
        migration = (sql_dir() / "248_stored_tags_and_folders_composed.sql").read_text(encoding="utf-8")
        for _ in range(2):  # as applied, and again: nothing more changes
            conn.execute(migration)
            stored = conn.execute("SELECT tags, folder FROM lists WHERE id = %s", (list_id,)).fetchone()
            assert stored == {"tags": [composed, "vip"], "folder": f"Kunden/{composed}"}
            tags = conn.execute("SELECT lead_id, tag FROM lead_tags ORDER BY lead_id, tag").fetchall()
            assert [(r["lead_id"], r["tag"]) for r in tags] == [(both, composed), (one, composed), (one, "vip")]
