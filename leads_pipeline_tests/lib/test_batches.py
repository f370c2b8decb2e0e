"""Batch keys name Dagster partitions: one per launch, readable, in launch order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leads_pipeline.lib.batches import import_batch_key

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_two_launches_of_one_file_within_a_second_get_two_batches() -> None:
    """`leads import` of the same file twice within a second reused the first import's batch, and the second
    launch reported the first one's result without importing anything."""
    first = datetime(2026, 12, 2, 9, 30, 5, 120_000, tzinfo=UTC)
    second = first + timedelta(milliseconds=300)
    keys = [import_batch_key("Fair", SHA, now=moment) for moment in (first, second)]
    assert keys[0] != keys[1]
    assert keys == sorted(keys)
    assert keys[0].startswith("import-fair-") and keys[0].endswith(SHA[:10])
