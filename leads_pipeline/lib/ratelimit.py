"""A token bucket per provider key: calls are spaced to the published limit instead of running into 429s.

``TokenBucket`` paces the threads of one process. A provider's limit is per API key, though, and Dagster runs
each run in a process of its own: four runs at once (a backfill of four batches, the drop folder's files) each
sent the full configured rate (two runs pacing Gemini at 9/s against the sandbox's 10/s: 17.4 calls/s, 19 in the
busiest second, 40 of 90 calls refused). ``SharedTokenBucket`` is the same bucket kept in PostgreSQL, one
``rate_buckets`` row per provider key, which every process on the database draws from (the same two runs, or
four: 9.1 calls/s, never more than 10 in a second, no 429).

It is a reservation (GCRA: the token bucket written as the time its granted calls are paid off): each call is one
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` that moves the row's ``due`` on by one gap and answers how long
this caller waits for the slot it got; nobody polls, and the server's clock is the one clock of every process (a
wall clock: set back some seconds, it holds calls as many seconds longer; set forward, the buckets are full). No
row or lock belongs to a process, so a killed run leaks nothing but the slots its waiting threads had reserved,
once. A ``pause`` (Retry-After) moves ``due`` past the pause for everyone and notes its end; a caller that slept
into a pause gives its slot up and queues again (one more read, only for callers that waited). A call costs
0.07-0.2 ms: 4,600-14,000 calls/s from one process, 6,600-10,000/s from four together, on two cores at load 6-8
(``python -m benchmarks.rate_limits``; the table is unlogged: a commit flushed to the WAL per call allowed ~300/s),
where providers allow tens; four processes given 20/s each kept 20.0/s together.

Why not Dagster's pool limits (``concurrency: pools``): a pool limits steps, not providers (``company_profiles``
calls Gemini and Apify under the pool ``gemini``; Apify is called under four pools); a limit of 1 runs the steps
one at a time whole, their database writes and cache hits included, not only their calls; and a slot a crashed
run did not free holds every later run of the pool until something frees it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg

from leads_pipeline.lib.store.db import connect


class Pacer(Protocol):
    """What a caller of a bucket uses: ``acquire`` before each request, ``pause`` for a Retry-After, ``acquired``
    (the calls this process let through), ``close`` when done."""

    acquired: int

    def acquire(self) -> None: ...

    def pause(self, seconds: float) -> None: ...

    def close(self) -> None: ...


def _limits(requests: int, per_seconds: float, burst: float | None) -> tuple[float, float]:
    """A bucket's capacity (``burst``, default ``requests``) and rate in calls a second."""
    if requests < 1 or per_seconds <= 0 or (burst is not None and burst < 1):
        raise ValueError(
            f"rate limit: expected requests >= 1 per positive seconds and a burst >= 1, "
            f"found {requests}/{per_seconds} burst {burst}"
        )
    return burst or requests, requests / per_seconds


class TokenBucket:
    """``requests`` per ``per_seconds``, refilled continuously; ``acquire`` blocks until a token is free.

    ``burst`` tokens (default: ``requests``) are available from full; a fraction above 1 (say 1.15) sends one call
    at a time yet credits a caller that woke a little late, so its lateness is not lost from the rate.
    ``pause(s)`` empties the bucket for ``s`` seconds: what a Retry-After asks of every caller, not just the one
    that got the 429.
    """

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.capacity, self.rate = _limits(requests, per_seconds, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.capacity)
        self._updated = clock()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.acquired = 0

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if now >= self._blocked_until and self._tokens >= 1 - 1e-9:  # float refills land just under 1
                    self._tokens = max(0.0, self._tokens - 1)
                    self.acquired += 1
                    return
                wait = max(self._blocked_until - now, (1 - self._tokens) / self.rate)
            self._sleep(wait)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
            self._tokens = 0.0

    def close(self) -> None:
        """Nothing to let go: the bucket is this process's memory."""


def bucket_key(provider: str, credential: str) -> str:
    """The row of ``provider`` under ``credential`` (limits are per key): the provider and a hash, never the key."""
    return f"{provider}:{hashlib.sha256(credential.encode()).hexdigest()[:16]}"


_NOW = "coalesce(%(now)s::float8, extract(epoch FROM statement_timestamp())::float8)"
"""The statement's time: the server's clock (shared by every process, on every host), or a test's clock."""

_TAKE = f"""
INSERT INTO rate_buckets AS b (key, due) VALUES (%(key)s, {_NOW} + %(gap)s)
ON CONFLICT (key) DO UPDATE SET due = greatest(b.due, {_NOW}) + %(gap)s
RETURNING greatest(0, b.due - %(gap)s - %(tolerance)s - {_NOW}) AS wait
"""
"""Reserve the next slot: ``due`` moves on one gap from itself (or from now, when the bucket is full); the slot
starts one gap before the new ``due``, less the tolerance (the burst above one token), and the caller waits for it."""

_PAUSE = f"""
INSERT INTO rate_buckets AS b (key, due, blocked_until)
VALUES (%(key)s, {_NOW} + %(seconds)s + %(tolerance)s, {_NOW} + %(seconds)s)
ON CONFLICT (key) DO UPDATE
SET due = greatest(b.due, excluded.due), blocked_until = greatest(b.blocked_until, excluded.blocked_until)
"""
"""No slot before the pause ends (``due`` past it), and its end noted for the callers already asleep."""

_BLOCKED = f"SELECT blocked_until > {_NOW} + 1e-6 AS blocked FROM rate_buckets WHERE key = %(key)s"
"""Whether a pause holds now: a caller woken a microsecond before its end (float sums of waits) is not held again."""


class SharedTokenBucket:
    """A ``TokenBucket`` (same rate, burst and ``pause``) kept in the database's ``rate_buckets`` row ``key``:
    the rate holds across all processes pacing that key. Each process holds one connection, opened on first use.

    ``clock`` (tests only) replaces the server's clock; processes pacing one key with different rates each space
    their own calls by their own gap."""

    def __init__(
        self,
        database_url: str,
        key: str,
        requests: int,
        per_seconds: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.capacity, self.rate = _limits(requests, per_seconds, burst)
        self.key = key
        self._database_url = database_url
        self._clock = clock
        self._sleep = sleep
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self.acquired = 0

    def acquire(self) -> None:
        gap = 1 / self.rate
        tolerance = (self.capacity - 1) / self.rate
        while True:
            row = self._row(_TAKE, gap=gap, tolerance=tolerance)
            wait = float(row["wait"]) if row else 0.0
            if wait > 0:
                self._sleep(wait)
                blocked = self._row(_BLOCKED)
                if blocked and blocked["blocked"]:  # a Retry-After came while this caller slept: queue again
                    continue
            with self._lock:
                self.acquired += 1
            return

    def pause(self, seconds: float) -> None:
        self._row(_PAUSE, seconds=seconds, tolerance=(self.capacity - 1) / self.rate)

    def close(self) -> None:
        """Let the connection go (the row stays: it is the key's, not this process's)."""
        with self._lock:
            self._drop()

    def _row(self, query: str, **params: float) -> dict[str, Any] | None:
        """One statement on the bucket's connection; a connection lost (a restarted server) is opened again once."""
        values: dict[str, Any] = {**params, "key": self.key, "now": self._clock() if self._clock else None}
        with self._lock:
            try:
                return self._execute(query, values)
            except psycopg.OperationalError:
                self._drop()
                return self._execute(query, values)

    def _execute(self, query: str, values: dict[str, Any]) -> dict[str, Any] | None:
        if self._conn is None:
            self._conn = connect(self._database_url, autocommit=True)
        cursor = self._conn.execute(query, values)
        return cursor.fetchone() if cursor.description else None

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
