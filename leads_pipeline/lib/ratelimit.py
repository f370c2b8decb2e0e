"""A token bucket per provider key: calls are spaced to the published limit instead of running into 429s."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
        if requests < 1 or per_seconds <= 0 or (burst is not None and burst < 1):
            raise ValueError(
                f"rate limit: expected requests >= 1 per positive seconds and a burst >= 1, "
                f"found {requests}/{per_seconds} burst {burst}"
            )
        self.capacity: float = burst or requests
        self.rate = requests / per_seconds
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
