"""One purchase of a paid lookup at a time, whichever job makes it.

Jobs at once whose leads share a company, a phone number or an address (two lists, two cron jobs) each looked in
the cache, found nothing yet, and each paid for the same answer. A job that finds nothing stored now takes the
lock of that one lookup (``buying``), looks again, and pays only when the answer is still missing; another job
asking meanwhile waits for the call, then reads the answer from the cache. A job alone pays one more round trip
per lookup it buys, none per answer it finds stored.

The lock is a transaction-level advisory lock on the caller's connection: a worker holds at most one at a time
(never one per lead of a batch, which the server's lock table could not hold) and, holding it, waits for nothing
another buyer holds but the provider, so waits cannot form a cycle (two lookups of one hash merely take turns);
the server lets it go with the transaction however the process ended, so a killed buyer blocks no one. The
caller stores the answer before the transaction ends (in it, or committed on another connection first).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg

Connection = psycopg.Connection[dict[str, Any]]

PURCHASE: Final = 0x1EAD5
"""The advisory lock namespace of paid lookups (``lib/store/liveness`` holds the other ones)."""


@contextmanager
def buying(conn: Connection, provider: str, key: str) -> Iterator[None]:
    """Hold the lock of ``provider``'s lookup of ``key`` (a company key, or a number's or address's blind index:
    never the value itself) for a transaction of ``conn``, waiting while another job buys it."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (PURCHASE, f"{provider} {key}"))
        yield
