"""Client-side pacing: at most N calls to a provider in any one-second window, across worker threads.

Providers publish rate limits; staying just under them beats bursting into 429s and sleeping through
exponential backoff, which leaves most of the allowance unused. The window is the one providers count in (a
sliding window of send times), and a call's time is taken when it is sent, after any wait, so a thread that woke
late on a busy machine cannot push the count over the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

WINDOW_S = 1.0


class Pacer:
    def __init__(self, per_second: float | None) -> None:
        self.limit = max(1, math.floor(per_second)) if per_second else 0
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until a call fits in the window, count it, and return its send time (no wait without a limit)."""
        if not self.limit:
            return time.monotonic()
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - WINDOW_S:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return now
                delay = self._sent[0] + WINDOW_S - now
            time.sleep(delay)
