"""How many processes prepare an import's chunks (the import itself is tested against PostgreSQL in
store/test_imports.py)."""

from __future__ import annotations

import os
from pathlib import Path

from leads_pipeline.lib.importer import SHORT_ROW_BYTES, ImportOptions, _worker_count
from leads_pipeline_tests.paths import DEMO_FILE


def test_a_file_of_about_a_chunk_is_prepared_in_the_importing_process() -> None:
    size = DEMO_FILE.stat().st_size
    assert _worker_count(ImportOptions(chunk_rows=size // SHORT_ROW_BYTES + 1), DEMO_FILE) == 1
    assert _worker_count(ImportOptions(), DEMO_FILE) == 1  # the shipped demo: 41 rows


def test_a_larger_file_gets_a_worker_per_core_and_an_explicit_count_is_kept(tmp_path: Path) -> None:
    size = DEMO_FILE.stat().st_size
    assert _worker_count(ImportOptions(chunk_rows=size // SHORT_ROW_BYTES), DEMO_FILE) == min(2, os.cpu_count() or 1)
    assert _worker_count(ImportOptions(workers=3), DEMO_FILE) == 3
    assert _worker_count(ImportOptions(chunk_rows=1), tmp_path / "missing.csv") == 1  # refused before any work
