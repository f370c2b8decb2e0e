"""Batch keys: the names of the ``batches`` partitions, readable in the Dagster UI and stable for a file."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _SLUG.sub("-", text.casefold()).strip("-")[:40] or "list"


def import_batch_key(list_name: str, sha256: str, now: datetime | None = None) -> str:
    """``import-<list>-<UTC time>-<file hash>``: unique per launch, sortable, and telling what was imported."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"import-{slug(list_name)}-{stamp}-{sha256[:10]}"
