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


def stored(**fields: Any) -> dict[str, Any]:
    """Lead column values as the store writes them: emails, phones and street sealed, with their blind indexes
    (for tests that write leads with plain SQL)."""
    from leads_pipeline.lib.privacy.crypto import SEALED_FIELDS, lead_columns

    columns: dict[str, Any] = {}
    for name, value in fields.items():
        columns.update(lead_columns(name, value) if name in SEALED_FIELDS else {name: value})
    return columns


def set_clause(**fields: Any) -> tuple[str, list[Any]]:
    """``SET`` assignments and their parameters for ``stored(**fields)``."""
    columns = stored(**fields)
    return ", ".join(f"{name} = %s" for name in columns), list(columns.values())


def bidx(value: str, field: str = "email") -> str:
    """The blind index a sealed field is looked up by: ``WHERE email_bidx = %s``."""
    from leads_pipeline.lib.privacy.crypto import blind_index

    digest = blind_index(field, value)
    assert digest is not None
    return digest
