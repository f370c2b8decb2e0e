"""Credits: the one unit of spend of every enrichment source, its price list, and the budget that caps it.

A credit is what the user pays for one successful lookup of a company or person field: a verified email verdict,
a phone's line type, a LinkedIn URL found, a profile read, a company researched. It stands for roughly $0.01-0.05
of provider cost, whatever the provider meters (ZeroBounce and NeverBounce count their own credits, Apify and
Twilio bill US dollars, Gemini tokens). ``lead_facts.cost`` is always in credits, so ``SUM(cost)`` over a batch
is what its job used (``creditsUsed``, the ``credit_ledger`` view, ``--max-credits``, ``LEADS_MONTHLY_CREDITS``).

"No data, no charge": an answer that found nothing (a verifier's "unknown", a search without a match, a profile
that is not public, a company not found) costs the user 0 credits even when the provider charged us. What the
provider itself charged is kept in the fact's details as ``provider_cost`` and ``provider_cost_unit`` so finance
can reconcile the provider's invoice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, Literal

PriceItem = Literal[
    "zerobounce",
    "neverbounce",
    "twilio_lookup",
    "apify_people_search",
    "apify_google_search",
    "apify_linkedin_profile",
    "gemini",
    "apify_company_search",
]

PRICES: Final[dict[PriceItem, float]] = {
    "zerobounce": 1.0,  # one email verdict (valid, invalid, catch-all...); ~$0.008 at ZeroBounce
    "neverbounce": 1.0,  # one email verdict; ~$0.008 at NeverBounce
    "twilio_lookup": 1.0,  # one phone line type (mobile, landline, VoIP); ~$0.008 at Twilio Lookup v2
    "apify_people_search": 2.0,  # one person matched, with email and direct dials; ~$0.02-0.05 per result
    "apify_google_search": 1.0,  # one LinkedIn profile URL found above the match threshold; ~$0.005 per query
    "apify_linkedin_profile": 1.0,  # one public profile read (headline, title, experience, photo); ~$0.01
    "gemini": 1.0,  # one company researched (industry, size, revenue, HQ, technologies, socials); ~$0.01-0.03
    "apify_company_search": 0.5,  # one company's website and LinkedIn page found by web search; ~$0.005
}
"""Credits charged per successful result, by billing item."""

PAID_VERIFIERS: Final[dict[str, PriceItem]] = {"zerobounce": "zerobounce", "neverbounce": "neverbounce"}
"""The price item of each paid email verifier, by the method name its verdicts carry."""


def price(item: PriceItem) -> float:
    """Credits one successful ``item`` costs."""
    return PRICES[item]


def charge(item: PriceItem, *, found: bool, provider_cost: float, provider_unit: str) -> tuple[float, dict[str, Any]]:
    """Credits to charge for one result and the details that record the provider's own cost: the item's price
    when it ``found`` something, else 0 (no data, no charge)."""
    credits = price(item) if found else 0.0
    return credits, {"price_item": item, "provider_cost": provider_cost, "provider_cost_unit": provider_unit}


class OverBudget(Exception):
    """A paid call was not made: its price does not fit the budget (``reason`` says which limit)."""


class Budget:
    """Credits a job may still spend: its ``--max-credits`` and the account's monthly budget, whichever is less.

    Every paid call reserves its price first, so concurrent calls cannot together pass the limit; the caller
    settles the reservation with what was charged (0 for no data)."""

    def __init__(self, limit: float | None, reason: str = "") -> None:
        self.limit = limit
        self.reason = reason
        self.spent = 0.0
        self._reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, credits: float) -> bool:
        """Hold ``credits`` for a call; False when the call could take spending past the limit."""
        with self._lock:
            if credits > 0 and self.limit is not None and self.spent + self._reserved + credits > self.limit + 1e-9:
                return False
            self._reserved += credits
            return True

    def require(self, credits: float) -> None:
        """``reserve`` or raise ``OverBudget`` with the budget's reason."""
        if not self.reserve(credits):
            raise OverBudget(self.reason or "budget exhausted")

    def reserve_many(self, credits: float, count: int) -> int:
        """Hold ``credits`` for as many of ``count`` calls as fit (one actor run serving many leads); how many."""
        with self._lock:
            fit = count
            if credits > 0 and self.limit is not None:
                room = self.limit + 1e-9 - self.spent - self._reserved
                fit = max(0, min(count, int(room // credits)))
            self._reserved += credits * fit
            return fit

    @contextmanager
    def released_on_error(self, reserved: float) -> Iterator[None]:
        """Around the paid call ``reserved`` was held for: if the call raises, nothing was charged, so the
        reservation is released before the error goes on (the caller settles a call that answered)."""
        try:
            yield
        except BaseException:
            self.settle(reserved, 0.0)
            raise

    def settle(self, reserved: float, charged: float) -> None:
        with self._lock:
            self._reserved -= reserved
            self.spent += charged

    def add(self, charged: float) -> None:
        """Count credits charged earlier by this job (a resumed run re-reading its own paid answers)."""
        with self._lock:
            self.spent += charged
