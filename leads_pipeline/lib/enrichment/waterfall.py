"""The company waterfall: providers in order per field, stop at the first good value, never overspend.

``run_waterfall`` is pure: the caller hands it a ``lookup(provider)`` that reads the cache or calls the
provider, and a ``Budget`` (``lib/credits.py``: the job's limits and each lead's max_credits_per_lead). A provider
is asked only while some field it can supply is still open, in the order the template's fields list their
providers (ties go to the cheaper one). Every paid call reserves its price first, so concurrent lookups cannot
together pass the job's cap (or a lead's); a call that found nothing releases the reservation ("no data, no
charge").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from leads_pipeline.lib.credits import Budget
from leads_pipeline.lib.enrichment.providers import COMPANY_PROVIDERS
from leads_pipeline.lib.enrichment.templates import Template
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.wording import credit_amount

if TYPE_CHECKING:  # the companies' validation loads pandas and pyarrow, which a job's history does not use
    from leads_pipeline.lib.enrichment.companies import ProviderAnswer


@dataclass(frozen=True)
class Lookup:
    """A provider's answer for a company and what it cost this job (0 for another job's cached answer)."""

    answer: ProviderAnswer
    charged: float
    cached: bool
    observed_at: datetime | None = None
    """When the provider gave the answer (a cached one: when it was bought); None: now."""


@dataclass
class Outcome:
    answers: list[tuple[str, Lookup]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    budget_exhausted: bool = False
    payers: dict[str, int] = field(default_factory=dict)
    """The lead each charged provider's price counts against (and whose fact carries it), by provider."""


def _next_provider(template: Template, open_fields: set[str], asked: set[str]) -> str | None:
    best: tuple[int, float, str] | None = None
    for name in open_fields:
        for position, provider in enumerate(template.company[name].sources):
            if provider in asked:
                continue
            candidate = (position, COMPANY_PROVIDERS[provider].credits, provider)
            best = candidate if best is None or candidate < best else best
            break
    return None if best is None else best[2]


def run_waterfall(
    template: Template,
    needed: set[str],
    lookup: Callable[[str], Lookup],
    budget: Budget,
    *,
    is_cached: Callable[[str], bool] = lambda provider: False,
    payers: Callable[[str], list[int]] = lambda provider: [],
) -> Outcome:
    """Ask providers in the template's order until every needed field has a good enough value (or none is left).

    ``payers(provider)`` are the leads that want a field the provider supplies: its call is charged in full to
    the one furthest from its max_credits_per_lead (``Budget.hold_roomiest``) and made only when that lead's cap has
    room for it."""
    outcome = Outcome()
    open_fields = {f for f in needed if f in template.company}
    asked: set[str] = set()
    while open_fields and (provider := _next_provider(template, open_fields, asked)) is not None:
        asked.add(provider)
        price = COMPANY_PROVIDERS[provider].credits
        if not template.affordable(provider):
            over = f"costs {credit_amount(price)}, above the template's max_credits_per_lead"
            outcome.skipped.append((provider, over))
            continue
        cached = is_cached(provider)
        reserved = 0.0 if cached else price
        payer, refused = budget.hold_roomiest(reserved, payers(provider))
        if refused is not None:
            outcome.skipped.append((provider, refused))
            outcome.budget_exhausted = True
            continue
        try:
            with budget.released_on_error(reserved, payer):
                result = lookup(provider)
        except ConfigurationError as exc:  # a provider without credentials is skipped with its reason
            outcome.skipped.append((provider, str(exc)))
            continue
        if result.cached:
            budget.settle(reserved, 0.0, payer)
            budget.add(result.charged, payer)
        else:
            budget.settle(reserved, result.charged, payer)
        if payer is not None:
            outcome.payers[provider] = payer
        outcome.answers.append((provider, result))
        for fact in result.answer.facts:
            rule = template.company.get(fact.field)
            if rule is not None and rule.satisfied_by(fact.confidence):
                open_fields.discard(fact.field)
    return outcome
