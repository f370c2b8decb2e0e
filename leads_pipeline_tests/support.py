"""Helpers shared by the test modules: importing a file the way the pipeline does, without Dagster."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from leads_pipeline.lib.importer import ImportOptions, run_import
from leads_pipeline.lib.prepare import OnDuplicate


def import_file(
    database_url: str,
    path: Path,
    list_name: str = "prospects",
    *,
    batch_id: str | None = None,
    on_duplicate: OnDuplicate = "skip",
    workers: int = 1,
    chunk_rows: int = 50_000,
) -> dict[str, Any]:
    """``run_import`` in this process (one worker unless asked), as user "tester"; returns the import status."""
    return run_import(
        database_url,
        batch_id=batch_id or f"batch-{path.stem}-{time.monotonic_ns()}",
        path=path,
        list_name=list_name,
        options=ImportOptions(on_duplicate=on_duplicate, workers=workers, chunk_rows=chunk_rows),
        user="tester",
    )
