"""Client-side pacing of a provider: a token bucket refilled at the run's ``requests_per_second``, one token of burst.

Providers publish limits of N calls per sliding window and count a call when it reaches them, which is some
time after we sent it (thread wake-ups, the SDK building the request, the network, the server's own queue), and
that delay varies from call to call. A bucket with one token spaces calls evenly, 1/rate apart, so any N+1
consecutive calls span N/rate seconds: at 19/s against a 20/s limit, 1.053 s, and a call may arrive up to 53 ms
earlier than its neighbours before the provider's window overflows. A client-side sliding window of N-1 calls
allows the same average rate but lets calls leave in bursts, and a burst arriving a few ms early overruns the
provider's window: that is where the 429s came from. The bucket is the one the CRM stage uses (``lib/ratelimit.py``),
whose ``pause`` is what a Retry-After asks of every caller sharing the key. A run's buckets are shared through the
database (``SharedTokenBucket``) with every other run pacing the same key: a backfill's runs at once share one rate.

The bucket holds 1.15 tokens, not 1: a thread woken when its token is due gets the CPU and the GIL a few ms late
(a switch interval is 5 ms, more on a busy machine), and with exactly one token every such delay is lost from
the rate for good (measured: 55 ms between calls instead of 52.6 at 19/s). The 0.15 token credits up to 8 ms of
lateness, and costs as much of the 53 ms margin; a longer stall still shifts the schedule rather than bursting.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.ratelimit import Pacer, SharedTokenBucket, TokenBucket, bucket_key

CAPACITY = 1.15
"""Tokens the bucket holds: one call at a time, plus credit for a wake-up up to 0.15 of a gap late."""


def configured_rate(variable: str) -> float | None:
    """The requests a second a ``*_REQUESTS_PER_SECOND`` variable sets, or None (unset: the provider's default). A
    value that is not a positive number is refused in one line naming the variable. Read by the Dagster resources'
    bindings and by the plain clients of ``leads verify`` alike, so one setting paces both."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = 0.0
    if not rate > 0:
        raise ConfigurationError(f"{variable} must be a positive number of requests a second, found {value!r}")
    return rate


def pacer(
    per_second: float | None,
    *,
    shared: tuple[str, str] | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Pacer | None:
    """A bucket releasing ``per_second`` calls a second, evenly spaced; None (no pacing) without a rate. With
    ``shared`` (a database URL and a ``bucket_key``), that is the rate of all processes pacing the key together."""
    if not per_second:
        return None
    requests = max(1, round(per_second))
    if shared is not None:
        database_url, key = shared
        return SharedTokenBucket(
            database_url, key, requests, requests / per_second, burst=CAPACITY, clock=clock, sleep=sleep
        )
    return TokenBucket(requests, requests / per_second, burst=CAPACITY, clock=clock or time.monotonic, sleep=sleep)


@contextmanager
def paced_by_key(
    database_url: str,
    provider: str,
    credential: str | None,
    per_second: float | None,
    attach: Callable[[Pacer | None], None],
) -> Iterator[Pacer | None]:
    """Within the block the calls of a client take slots of ``provider``'s bucket for ``credential`` (what the
    provider counts requests by), kept in ``database_url``: ``attach`` hands the bucket to what sends the requests
    (a session, a transport) and, at the end, None; the bucket's connection is then let go. Not paced (None, and
    nothing attached) without a rate or a credential."""
    bucket = pacer(per_second, shared=(database_url, bucket_key(provider, credential))) if credential else None
    if bucket is None:
        yield None
        return
    attach(bucket)
    try:
        yield bucket
    finally:
        attach(None)
        bucket.close()
