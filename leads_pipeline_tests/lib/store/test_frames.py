"""Reading a batch's stored leads back as DataFrames through COPY: values survive exactly, in bounded blocks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leads_pipeline.lib.store import frames
from leads_pipeline.lib.store.batches import batch_lead_ids
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.imports import create_batch
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline_tests.support import import_text, stored

AWKWARD = [
    'Ann "The Closer" O\'Neil',
    "Lee, Jr.",
    "two\nlines",
    "Zoë Brontë 日本",
    "",  # an empty string is not NULL
]


def _seed(database_url: str, names: list[str | None]) -> str:
    with connect(database_url) as conn:
        lead_list = create_list(conn, "frames", owner="test")
        create_batch(conn, "sel-1", "selection", lead_list.id, "test selection")
        for i, name in enumerate(names):
            email = stored(email=f"p{i}@example.com")
            row = conn.execute(
                "INSERT INTO leads (list_id, full_name, employee_count, annual_revenue, email, email_bidx,"
                " email_domain) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (lead_list.id, name, i if i % 2 else None, 1.5 * i, *email.values()),
            ).fetchone()
            assert row is not None
            conn.execute("INSERT INTO batch_leads (batch_id, lead_id) VALUES ('sel-1', %s)", (row["id"],))
    return "sel-1"


def test_values_round_trip_exactly(database_url: str) -> None:
    batch = _seed(database_url, [*AWKWARD, None])
    with connect(database_url) as conn:
        frame = pd.concat(list(frames.batch_lead_frames(conn, batch)))
    assert frame["full_name"].iloc[: len(AWKWARD)].tolist() == AWKWARD
    assert pd.isna(frame["full_name"].iloc[-1])
    assert frame["employee_count"].dtype == "Int64"
    assert frame["employee_count"].tolist()[:4] == [pd.NA, 1, pd.NA, 3]
    assert frame["annual_revenue"].tolist()[:3] == [0.0, 1.5, 3.0]
    assert frame["email"].tolist()[:2] == ["p0@example.com", "p1@example.com"], "sealed in the table, opened here"


def test_large_batches_come_in_several_frames_with_every_lead_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = _seed(database_url, [f"Person {i}" for i in range(3000)])
    monkeypatch.setattr(frames, "BLOCK_BYTES", 16 * 1024)
    with connect(database_url) as conn:
        parts = list(frames.batch_lead_frames(conn, batch))
    assert len(parts) > 1
    combined = pd.concat(parts)
    assert len(combined) == 3000
    assert combined.index.is_unique


def test_unknown_batch_gives_no_frames(database_url: str) -> None:
    with connect(database_url) as conn:
        assert list(frames.batch_lead_frames(conn, "no-such-batch")) == []


def test_only_the_columns_asked_for_are_read(database_url: str) -> None:
    batch = _seed(database_url, ["Ann", "Bo"])
    with connect(database_url) as conn:
        [frame] = list(frames.batch_lead_frames(conn, batch, ("email", "employee_count")))
        assert list(frame.columns) == ["email", "employee_count"]
        assert frame["email"].tolist() == ["p0@example.com", "p1@example.com"]
        assert frame["employee_count"].dtype == "Int64"
        with pytest.raises(ValueError, match="not stored lead columns: password"):
            list(frames.batch_lead_frames(conn, batch, ("email", "password")))


def test_an_import_batch_gives_the_leads_it_created_and_matched_each_once(database_url: str, tmp_path: Path) -> None:
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="test")
    header = "First Name,Email\n"
    import_text(database_url, tmp_path / "old.csv", header + "Old,old@example.com\nGone,gone@example.com\n")
    rows = ["New,new@example.com", "Old,old@example.com", "Gone,gone@example.com", "New,new@example.com"]
    new = header + "\n".join(rows) + "\n"
    status = import_text(database_url, tmp_path / "new.csv", new, chunk_rows=1)  # the last row meets the first's lead
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET deleted_at = now() WHERE first_name = 'Gone'")
        [frame] = list(frames.batch_lead_frames(conn, status["batchId"], ("first_name", "email")))
        ids = batch_lead_ids(conn, status["batchId"])
    assert sorted(frame["email"]) == ["new@example.com", "old@example.com"]
    assert frame.index.is_unique
    assert ids == sorted(frame.index)  # the ids alone: the same leads, each once, in order
