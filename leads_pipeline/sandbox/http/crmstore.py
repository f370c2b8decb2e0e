"""The records behind the CRM emulators: one in-memory object store per emulated CRM.

Each emulator keeps its records here and speaks its own API about them. Modification times strictly increase
(one millisecond apart at least), so that "changed since" cursors in tests and benchmarks never tie. Tests
change records "in the CRM" with :meth:`CrmStore.touch`, as a sales rep editing a contact would.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def utf16_length(value: Any) -> int:
    """A text value's length as Salesforce (and HubSpot, on Java) count it: UTF-16 code units, so an emoji is two."""
    return len(value.encode("utf-16-le")) // 2 if isinstance(value, str) else 0


def valid_email(value: Any) -> bool:
    return value is None or value == "" or bool(EMAIL.match(str(value)))


@dataclass
class CrmRecord:
    id: str
    fields: dict[str, Any]
    created_ms: int
    updated_ms: int
    archived: bool = False

    @property
    def created(self) -> datetime:
        return datetime.fromtimestamp(self.created_ms / 1000, UTC)

    @property
    def updated(self) -> datetime:
        return datetime.fromtimestamp(self.updated_ms / 1000, UTC)


@dataclass
class CrmStore:
    """Records by id, with a unique index per key field (case-insensitive), safe for the server's threads."""

    key_fields: tuple[str, ...] = ("email",)
    new_id: Callable[[int], str] = str
    records: dict[str, CrmRecord] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    _index: dict[tuple[str, str], str] = field(default_factory=dict)
    _last_ms: int = 0
    _count: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def now_ms(self) -> int:
        with self.lock:
            self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
            return self._last_ms

    def find(self, key: str, value: Any) -> CrmRecord | None:
        if value is None or value == "":
            return None
        with self.lock:
            record_id = self._index.get((key, str(value).casefold()))
            return self.records.get(record_id) if record_id else None

    def get(self, record_id: str) -> CrmRecord | None:
        with self.lock:
            record = self.records.get(record_id)
            return record if record and not record.archived else None

    def create(self, fields: dict[str, Any]) -> CrmRecord:
        with self.lock:
            self._count += 1
            now = self.now_ms()
            record = CrmRecord(self.new_id(self._count), {}, now, now)
            self.records[record.id] = record
            self._write(record, fields)
            return record

    def update(self, record: CrmRecord, fields: dict[str, Any]) -> CrmRecord:
        with self.lock:
            record.updated_ms = self.now_ms()
            self._write(record, fields)
            return record

    def touch(self, record_id: str, **fields: Any) -> CrmRecord:
        """Change a record as a CRM user would (tests): new values and a new modification time."""
        with self.lock:
            record = self.records[record_id]
            return self.update(record, fields)

    def delete(self, record_id: str) -> bool:
        """Remove a record and its key entries, as a CRM's delete does; False when no such live record exists.
        Its id is remembered (``deleted``) so an emulator can say "already deleted" as its CRM does."""
        with self.lock:
            record = self.records.pop(record_id, None)
            if record is None:
                return False
            for key in self.key_fields:
                value = record.fields.get(key)
                if value not in (None, "") and self._index.get((key, str(value).casefold())) == record_id:
                    del self._index[(key, str(value).casefold())]
            self.deleted.add(record_id)
            return True

    def changed_since(self, since_ms: int | None) -> Iterator[CrmRecord]:
        """Live records modified after ``since_ms``, oldest first (ties broken by id)."""
        with self.lock:
            found = [
                r for r in self.records.values() if not r.archived and (since_ms is None or r.updated_ms > since_ms)
            ]
        yield from sorted(found, key=lambda r: (r.updated_ms, r.id))

    def count(self) -> int:
        with self.lock:
            return sum(1 for r in self.records.values() if not r.archived)

    def _write(self, record: CrmRecord, fields: dict[str, Any]) -> None:
        for key in self.key_fields:
            if key in fields:
                old = record.fields.get(key)
                if old not in (None, ""):
                    self._index.pop((key, str(old).casefold()), None)
                if fields[key] not in (None, ""):
                    self._index[(key, str(fields[key]).casefold())] = record.id
        record.fields.update(fields)


@dataclass
class DailyUsage:
    """The calls counted against a CRM's daily allowance. The count starts over with each UTC day, so a sandbox left
    running does not end up refusing everything; tests lower ``limit`` to spend it."""

    limit: int
    used: int = 0
    day: date = field(default_factory=lambda: datetime.now(UTC).date())
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spend(self) -> bool:
        """Count one call; False when it is over the allowance (the CRM refuses it)."""
        with self.lock:
            today = datetime.now(UTC).date()
            if today != self.day:
                self.day, self.used = today, 0
            self.used += 1
            return self.used <= self.limit


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 with milliseconds and Z (HubSpot, GoHighLevel)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def bearer(headers: dict[str, str] | Any) -> str | None:
    header = str(headers.get("authorization", ""))
    return header[7:].strip() or None if header.lower().startswith("bearer ") else None
