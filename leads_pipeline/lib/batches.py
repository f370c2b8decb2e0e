"""Batch keys: the names of the ``batches`` partitions, readable in the Dagster UI and stable for a file."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _SLUG.sub("-", text.casefold()).strip("-")[:40] or "list"


def import_batch_key(list_name: str, sha256: str, now: datetime | None = None) -> str:
    """``import-<list>-<list hash>-<UTC time>-<file hash>``: unique per launch, sortable, and telling what was
    imported. The list's slug alone is not unique (every Cyrillic or Japanese name is "list", "Q3 EMEA" and
    "q3-emea" are two lists), so a hash of the list name (as lists compare names: case-insensitive) follows it:
    the same file dropped into two such lists in one sensor tick made one batch, and the second list got nothing.
    The time has microseconds: to the second, a file imported again within the second its last import ended
    (a script, `leads import` twice in a row) got that import's batch, and the second launch reported the
    first one's result without importing anything."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    list_hash = hashlib.sha256(list_name.strip().lower().encode()).hexdigest()[:6]
    return f"import-{slug(list_name)}-{list_hash}-{stamp}-{sha256[:10]}"
