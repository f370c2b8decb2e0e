"""Credits: the one unit of spend of every enrichment source, its price list, and the budget that caps it.

A credit is what the user pays for one successful lookup of a company or person field: a verified email verdict,
a phone's line type, a LinkedIn URL found, a profile read, a company researched. It stands for roughly $0.01-0.05
of provider cost, whatever the provider meters (ZeroBounce and NeverBounce count their own credits, Apify and
Twilio bill US dollars, Gemini tokens). ``lead_facts.cost`` is always in credits; each costed fact writes one
charge into ``credit_charges`` (sql/170), which outlives the fact and its lead, and the sum of a job's charges is
what it used (``creditsUsed``, the ``credit_ledger`` view, ``--max-credits``, ``LEADS_MONTHLY_CREDITS``).

"No data, no charge": an answer that found nothing (a verifier's "unknown", a search without a match, a profile
that is not public, a company not found) costs the user 0 credits even when the provider charged us. What the
provider itself charged is kept in the fact's details as ``provider_cost`` and ``provider_cost_unit`` so finance
can reconcile the provider's invoice.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, Literal

from leads_pipeline.lib.wording import counted, credit_amount

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
    """Credits a job may still spend: its ``--max-credits`` and the account's monthly budget, whichever is less,
    and, per lead, the template's ``max_credits_per_lead`` (``lead_cap``) less what the job already charged it.

    Every paid call reserves its price first, so concurrent calls cannot together pass a limit; the caller
    settles the reservation with what was charged (0 for no data). A call made for a lead names it (``lead``):
    the lead's charges and reservations count against its cap; ``lead_spent`` seeds what the job's earlier
    stages charged each lead (read from the ledger when the stage starts). Calls not made are counted per reason
    in ``refused`` (leads stopped by their cap in ``capped_leads``), for the stage's note."""

    def __init__(
        self,
        limit: float | None,
        reason: str = "",
        *,
        lead_cap: float | None = None,
        lead_reason: str = "",
        lead_spent: Mapping[int, float] | None = None,
    ) -> None:
        self.limit = limit
        self.reason = reason
        self.lead_cap = lead_cap
        self.lead_reason = lead_reason or f"leads reached their cap of {credit_amount(lead_cap or 0)}"
        self.spent = 0.0
        self.refused: Counter[str] = Counter()
        self.capped_leads: set[int] = set()
        self._reserved = 0.0
        self._lead_used: dict[int, float] = dict(lead_spent or {})
        """Per lead: credits charged in this job plus those held for calls in flight."""
        self._lock = threading.Lock()

    def hold(self, credits: float, lead: int | None = None) -> str | None:
        """Hold ``credits`` for a call (made for ``lead``); None when held, else why the call may not be made
        (it could take the lead past its cap, or the job's spending past its limit)."""
        with self._lock:
            return self._hold(credits, lead)

    def _hold(self, credits: float, lead: int | None) -> str | None:
        """``hold``, the lock held."""
        if (
            credits > 0
            and lead is not None
            and self.lead_cap is not None
            and self._lead_used.get(lead, 0.0) + credits > self.lead_cap + 1e-9
        ):
            self.refused[self.lead_reason] += 1
            self.capped_leads.add(lead)
            return self.lead_reason
        if credits > 0 and self.limit is not None and self.spent + self._reserved + credits > self.limit + 1e-9:
            reason = self.reason or "budget exhausted"
            self.refused[reason] += 1
            return reason
        self._reserved += credits
        if lead is not None:
            self._lead_used[lead] = self._lead_used.get(lead, 0.0) + credits
        return None

    def reserve(self, credits: float, lead: int | None = None) -> bool:
        """``hold``: True when the call may be made."""
        return self.hold(credits, lead) is None

    def require(self, credits: float, lead: int | None = None) -> None:
        """``reserve`` or raise ``OverBudget`` with the reason."""
        reason = self.hold(credits, lead)
        if reason is not None:
            raise OverBudget(reason)

    def reserve_each(self, credits: float, leads: Sequence[int]) -> list[int]:
        """Hold ``credits`` for each lead's call that fits (one actor run serving many leads); those leads."""
        return [lead for lead in leads if self.reserve(credits, lead)]

    def hold_roomiest(self, credits: float, leads: Iterable[int]) -> tuple[int | None, str | None]:
        """Hold ``credits`` for a call several ``leads`` share (a company's lookup, a shared number or profile),
        charged to the one furthest from its cap (the lowest id among equals): that payer (None for no leads)
        and None when held, else why not (``hold``). Chosen and held in one locked step: between two, a
        concurrent call for the chosen lead (its own number) could fill its cap and the shared call be refused
        though another of its leads had room."""
        with self._lock:
            payer = min(leads, key=lambda lead: (self._lead_used.get(lead, 0.0), lead), default=None)
            return payer, self._hold(credits, payer)

    @contextmanager
    def released_on_error(self, reserved: float, lead: int | None = None) -> Iterator[None]:
        """Around the paid call ``reserved`` was held for: if the call raises, nothing was charged, so the
        reservation is released before the error goes on (the caller settles a call that answered)."""
        try:
            yield
        except BaseException:
            self.settle(reserved, 0.0, lead)
            raise

    def settle(self, reserved: float, charged: float, lead: int | None = None) -> None:
        with self._lock:
            self._reserved -= reserved
            self.spent += charged
            if lead is not None:
                self._lead_used[lead] = self._lead_used.get(lead, 0.0) - reserved + charged

    def add(self, charged: float, lead: int | None = None) -> None:
        """Count credits charged earlier by this job (a resumed run re-reading its own paid answers)."""
        with self._lock:
            self.spent += charged
            if lead is not None:
                self._lead_used[lead] = self._lead_used.get(lead, 0.0) + charged

    def note(self, call: str = "paid lookup") -> str | None:
        """Why calls were not made, for the stage's progress note ("<reason>: N paid lookups not made"); None
        when every call was made."""
        with self._lock:
            parts = []
            for reason, count in sorted(self.refused.items()):
                leads = f" for {counted(len(self.capped_leads), 'lead')}" if reason == self.lead_reason else ""
                parts.append(f"{reason}: {counted(count, call)} not made{leads}")
            return "; ".join(parts) or None
