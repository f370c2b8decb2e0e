"""Latency and fault draws shared by every emulator: HTTP, DNS and SMTP.

Each emulator has its own faults (an HTTP 503, a DNS SERVFAIL, an SMTP 421) but they all degrade the same
way: a service time drawn from one distribution, and faults drawn independently at configured rates from a
seeded ``random.Random``, so that a seeded sandbox run fails in the same places every time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

F = TypeVar("F")


@dataclass(frozen=True)
class Latency:
    """Service time of one request: a log-normal distribution given by its median and 95th percentile.

    Real APIs have long tails; a log-normal with a median and a p95 is the simplest shape that has one.
    ``Latency()`` (both zero) adds no delay, which is what fast tests want; a p95 at or below the median gives
    the median every time.
    """

    median_s: float = 0.0
    p95_s: float = 0.0

    def sample(self, rng: random.Random) -> float:
        if self.median_s <= 0:
            return 0.0
        if self.p95_s <= self.median_s:
            return self.median_s
        sigma = (math.log(self.p95_s) - math.log(self.median_s)) / 1.645
        return rng.lognormvariate(math.log(self.median_s), sigma)


def draw_fault(rates: Iterable[tuple[float, F]], rng: random.Random) -> F | None:
    """The first fault whose independent draw hits, checking ``(rate, fault)`` pairs in order; None if none.

    A zero rate draws nothing from ``rng``, so configuring no faults leaves a seeded run's other draws (latency)
    exactly as they were.
    """
    for rate, fault in rates:
        if rate > 0 and rng.random() < rate:
            return fault
    return None


def check_rates(owner: str, **rates: float) -> None:
    """Raise ``ValueError`` naming the setting when a rate is not a probability (a typo like 5 for 5%)."""
    for name, rate in rates.items():
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{owner}.{name}: expected a probability between 0 and 1, found {rate!r}")
