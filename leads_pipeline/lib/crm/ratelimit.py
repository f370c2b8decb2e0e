"""Client-side rate limiting per connection: the CRM's rolling window, kept on our side of the wire.

CRMs publish limits as "N requests in any W seconds" (HubSpot 190/10 s, GoHighLevel 100/10 s, ...). Steady pacing
at N/W wastes the first window's allowance and every pause; a log of send times lets a sync use all of it (a
burst of N, then each send as the oldest one ages out) and never exceed it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

JITTER_S = 0.25
"""Added to the window: a request counts from when we send it, the CRM counts from when it arrives, and arrivals
can bunch by the network's and the machine's jitter."""


class RollingWindow:
    """At most ``requests`` sends in any ``per_seconds`` (plus ``JITTER_S``); ``acquire`` blocks until one fits.

    ``pause(s)`` holds every caller for ``s`` seconds: what a Retry-After asks of all of them, not just the one that
    got the 429.
    """

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        jitter_s: float = JITTER_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests < 1 or per_seconds <= 0:
            raise ValueError(f"rate limit: expected requests >= 1 per positive seconds, found {requests}/{per_seconds}")
        self.requests = requests
        self.window = per_seconds + jitter_s
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.acquired = 0

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.window:
                    self._sent.popleft()
                if now >= self._blocked_until and len(self._sent) < self.requests:
                    self._sent.append(now)
                    self.acquired += 1
                    return
                wait = self._blocked_until - now
                if len(self._sent) >= self.requests:
                    wait = max(wait, self._sent[0] + self.window - now)
            self._sleep(max(wait, 0.001))

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
