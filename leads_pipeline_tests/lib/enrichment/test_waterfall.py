"""The waterfall's stop rules, ordering, per-lead ceiling, "no data, no charge" and budget caps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from leads_pipeline.lib.credits import Budget
from leads_pipeline.lib.enrichment.companies import CompanyFact, ProviderAnswer
from leads_pipeline.lib.enrichment.templates import load_template, parse_template
from leads_pipeline.lib.enrichment.waterfall import Lookup, run_waterfall
from leads_pipeline.lib.errors import ConfigurationError

PRICES = {"domain": 0.0, "gemini": 1.0, "apify_search": 0.5}


def _answers(**facts: list[tuple[str, int]]) -> dict[str, ProviderAnswer]:
    return {
        provider: ProviderAnswer("found" if f else "not_found", facts=tuple(CompanyFact(n, "v", c) for n, c in f))
        for provider, f in facts.items()
    }


class Providers:
    def __init__(self, answers: dict[str, ProviderAnswer]) -> None:
        self.answers = answers
        self.called: list[str] = []

    def __call__(self, provider: str) -> Lookup:
        self.called.append(provider)
        answer = self.answers.get(provider, ProviderAnswer("not_found"))
        return Lookup(answer, PRICES[provider] if answer.status == "found" else 0.0, cached=False)


def test_stops_at_the_first_validated_value() -> None:
    template = load_template("premium")
    providers = Providers(
        _answers(
            domain=[("website", 85), ("company_domain", 85)], gemini=[("industry", 80), ("company_linkedin_url", 80)]
        )
    )
    budget = Budget(None)

    outcome = run_waterfall(
        template, {"website", "company_domain", "industry", "company_linkedin_url"}, providers, budget
    )

    assert providers.called == ["domain", "gemini"]  # apify_search never asked: every field was filled
    assert budget.spent == 1.0
    assert [p for p, _ in outcome.answers] == ["domain", "gemini"]


def test_min_confidence_keeps_the_waterfall_going() -> None:
    template = load_template("premium")
    providers = Providers(_answers(domain=[("website", 60)], gemini=[], apify_search=[("website", 70)]))
    budget = Budget(None)

    run_waterfall(template, {"website"}, providers, budget)

    assert providers.called == ["domain", "gemini", "apify_search"]
    assert budget.spent == 0.5  # gemini found nothing: no data, no charge


def test_per_lead_ceiling_skips_expensive_providers(tmp_path: Path) -> None:
    template = parse_template(
        {"name": "cheap", "max_credits_per_lead": 0.5, "company": {"default": {"sources": ["gemini", "apify_search"]}}},
        tmp_path / "cheap.yaml",
    )
    providers = Providers(_answers(apify_search=[("website", 70)]))

    outcome = run_waterfall(template, {"website"}, providers, Budget(None))

    assert providers.called == ["apify_search"]
    assert outcome.skipped[0][0] == "gemini" and "max_credits_per_lead" in outcome.skipped[0][1]


def test_a_company_call_is_charged_to_the_lead_with_most_room_and_only_if_it_fits(tmp_path: Path) -> None:
    """A company's lookup serves all its leads but counts, in full, against one: the lead wanting its fields that
    is furthest from its max_credits_per_lead. When even that lead cannot afford it, it is not made."""
    template = parse_template(
        {"name": "capped", "max_credits_per_lead": 1.5, "company": {"default": {"sources": ["gemini"]}}},
        tmp_path / "capped.yaml",
    )
    budget = Budget(None, lead_cap=1.5, lead_reason="leads reached the cap", lead_spent={1: 1.0, 2: 0.0, 3: 0.0})
    providers = Providers(_answers(gemini=[("industry", 80)]))

    outcome = run_waterfall(template, {"industry"}, providers, budget, payers=lambda provider: [1, 3])

    assert providers.called == ["gemini"] and outcome.payers == {"gemini": 3}
    assert budget.hold_roomiest(0.0, [1, 3]) == (1, None), "lead 3 now carries the call's credit"
    again = run_waterfall(template, {"industry"}, Providers({}), budget, payers=lambda provider: [1, 3])
    assert again.skipped == [("gemini", "leads reached the cap")] and budget.spent == 1.0


class _Interleaved:
    """A budget's lock that, when first released, runs ``between`` as a concurrent call of another thread would
    (the first moment one could run)."""

    def __init__(self, between: Callable[[], object]) -> None:
        self.lock = threading.Lock()
        self.between = between
        self.releases = 0

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
        self.releases += 1
        if self.releases == 1:
            self.between()


def test_a_shared_call_is_held_for_the_payer_it_chose_before_another_call_can_fill_its_cap(tmp_path: Path) -> None:
    """Choosing a shared call's payer and holding its price is one step: the lead's own call, made by another
    thread as soon as the budget's lock is free, cannot fill the chosen payer's cap in between and have the
    shared call refused although its other lead had room (then it was refused: payer chosen, own call held, the
    payer's cap full)."""
    template = parse_template(
        {"name": "capped", "max_credits_per_lead": 1.0, "company": {"default": {"sources": ["gemini"]}}},
        tmp_path / "capped.yaml",
    )
    budget = Budget(None, lead_cap=1.0, lead_reason="leads reached the cap")
    own: list[str | None] = []
    budget._lock = _Interleaved(lambda: own.append(budget.hold(1.0, 1)))  # type: ignore[assignment]
    providers = Providers(_answers(gemini=[("industry", 80)]))

    outcome = run_waterfall(template, {"industry"}, providers, budget, payers=lambda provider: [1, 2])

    assert providers.called == ["gemini"] and outcome.payers == {"gemini": 1} and outcome.skipped == []
    assert own == ["leads reached the cap"], "lead 1's own call ran after the shared one was held for lead 1"
    assert budget.spent == 1.0 and budget.hold_roomiest(1.0, [1, 2]) == (2, None), "lead 2 still has room"


def test_budget_stops_paid_calls_but_not_free_ones() -> None:
    template = load_template("standard")
    providers = Providers(_answers(domain=[("website", 85)], gemini=[("industry", 80)]))
    budget = Budget(0.5, "job reached its --max-credits 0.5")

    outcome = run_waterfall(template, {"website", "industry"}, providers, budget)

    assert providers.called == ["domain"]
    assert outcome.budget_exhausted and outcome.skipped == [("gemini", "job reached its --max-credits 0.5")]
    assert budget.spent == 0.0


def test_cached_answers_are_free_even_without_budget() -> None:
    template = load_template("standard")
    budget = Budget(0.0, "cap")

    def cached(provider: str) -> Lookup:
        return Lookup(ProviderAnswer("found", facts=(CompanyFact("industry", "x", 80),)), 0.0, cached=True)

    outcome = run_waterfall(template, {"industry"}, cached, budget, is_cached=lambda provider: True)

    assert [p for p, _ in outcome.answers] == ["gemini"] and not outcome.budget_exhausted


def test_provider_without_credentials_is_skipped_with_its_reason() -> None:
    template = load_template("premium")

    def lookup(provider: str) -> Lookup:
        if provider == "gemini":
            raise ConfigurationError("Gemini is not configured: set GEMINI_API_KEY")
        return Lookup(ProviderAnswer("found", facts=(CompanyFact("company_linkedin_url", "u", 70),)), 0.5, cached=False)

    budget = Budget(None)
    outcome = run_waterfall(template, {"company_linkedin_url"}, lookup, budget)

    assert outcome.skipped == [("gemini", "Gemini is not configured: set GEMINI_API_KEY")]
    assert budget.spent == 0.5


def test_concurrent_lookups_never_pass_the_cap() -> None:
    template = load_template("standard")
    budget = Budget(7.0, "cap")
    calls = 0
    lock = threading.Lock()

    def lookup(provider: str) -> Lookup:
        nonlocal calls
        with lock:
            calls += 1
        return Lookup(ProviderAnswer("found", facts=(CompanyFact("industry", "x", 80),)), 1.0, cached=False)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: run_waterfall(template, {"industry"}, lookup, budget), range(50)))

    assert calls == 7 and budget.spent == pytest.approx(7.0)
