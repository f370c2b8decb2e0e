"""Client-side pacing of a provider: a token bucket refilled at the run's ``requests_per_second``, one token of burst.

Providers publish limits of N calls per sliding window and count a call when it reaches them, which is some
time after we sent it (thread wake-ups, the SDK building the request, the network, the server's own queue), and
that delay varies from call to call. A bucket with one token spaces calls evenly, 1/rate apart, so any N+1
consecutive calls span N/rate seconds: at 19/s against a 20/s limit, 1.053 s, and a call may arrive up to 53 ms
earlier than its neighbours before the provider's window overflows. A client-side sliding window of N-1 calls
allows the same average rate but lets calls leave in bursts, and a burst arriving a few ms early overruns the
provider's window: that is where the 429s came from. The bucket is the CRM stage's (``lib/crm/ratelimit.py``),
whose ``pause`` is what a Retry-After asks of every caller sharing the key.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from leads_pipeline.lib.crm.ratelimit import TokenBucket


def pacer(
    per_second: float | None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TokenBucket | None:
    """A bucket releasing ``per_second`` calls a second, evenly spaced; None (no pacing) without a rate."""
    if not per_second:
        return None
    requests = max(1, round(per_second))
    return TokenBucket(requests, requests / per_second, burst=1, clock=clock, sleep=sleep)
