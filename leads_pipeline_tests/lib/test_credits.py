"""The price list and the budget: one credit unit for every source, no data no charge, never past the cap."""

from __future__ import annotations

import typing

import pytest

from leads_pipeline.lib.credits import PAID_VERIFIERS, PRICES, Budget, OverBudget, PriceItem, charge, price
from leads_pipeline.lib.enrichment.providers import COMPANY_PROVIDERS, SOURCE_CREDITS_PER_LEAD


def test_every_paid_provider_has_a_positive_price() -> None:
    assert set(PRICES) == set(typing.get_args(PriceItem))
    assert set(PRICES) >= {
        "zerobounce",
        "neverbounce",
        "twilio_lookup",
        "apify_people_search",
        "apify_google_search",
        "apify_linkedin_profile",
        "gemini",
        "apify_company_search",
    }
    assert all(value > 0 for value in PRICES.values())
    assert set(PAID_VERIFIERS.values()) <= set(PRICES)


def test_company_providers_and_contact_estimates_use_the_price_list() -> None:
    assert COMPANY_PROVIDERS["gemini"].credits == price("gemini")
    assert COMPANY_PROVIDERS["apify_search"].credits == price("apify_company_search")
    assert COMPANY_PROVIDERS["domain"].credits == 0
    assert SOURCE_CREDITS_PER_LEAD["email"][0] == price("zerobounce")
    assert SOURCE_CREDITS_PER_LEAD["phone"] == (
        price("apify_people_search"),
        price("apify_people_search") + price("twilio_lookup"),
    )
    assert SOURCE_CREDITS_PER_LEAD["linkedin"][0] == price("apify_google_search") + price("apify_linkedin_profile")
    for expected, worst in SOURCE_CREDITS_PER_LEAD.values():
        assert 0 < expected <= worst


def test_no_data_no_charge_but_the_provider_cost_is_kept() -> None:
    assert charge("twilio_lookup", found=True, provider_cost=0.008, provider_unit="usd") == (
        PRICES["twilio_lookup"],
        {"price_item": "twilio_lookup", "provider_cost": 0.008, "provider_cost_unit": "usd"},
    )
    credits, details = charge("apify_people_search", found=False, provider_cost=0.03, provider_unit="usd")
    assert credits == 0.0 and details["provider_cost"] == 0.03


def test_budget_reserves_before_a_call_and_settles_what_was_charged() -> None:
    budget = Budget(3.0, "job j reached its --max-credits 3")
    assert budget.reserve(2.0) and not budget.reserve(2.0)
    budget.settle(2.0, 0.0)  # found nothing: the reservation is freed
    assert budget.reserve(2.0)
    budget.settle(2.0, 2.0)
    with pytest.raises(OverBudget, match="--max-credits 3"):
        budget.require(2.0)
    assert budget.reserve_each(0.5, list(range(10))) == [0, 1] and budget.reserve_each(0.5, [10]) == []
    budget.settle(1.0, 0.5)
    assert budget.spent == 2.5 and budget.reserve_each(0.5, [1, 2, 3]) == [1]


def test_a_failed_paid_call_releases_its_reservation_and_charges_nothing() -> None:
    budget = Budget(3.0)
    assert budget.reserve(2.0)
    with pytest.raises(TimeoutError), budget.released_on_error(2.0):
        raise TimeoutError("the provider did not answer")
    assert budget.spent == 0.0 and budget.reserve(3.0), "the whole budget is free again"
    with budget.released_on_error(3.0):
        pass  # an answered call keeps its reservation until the caller settles it
    assert not budget.reserve(0.5)
    budget.settle(3.0, 1.0)
    assert budget.spent == 1.0 and budget.reserve(2.0)


def test_an_unlimited_budget_takes_everything() -> None:
    budget = Budget(None)
    assert budget.reserve(1e9) and len(budget.reserve_each(1.0, list(range(500)))) == 500


def test_a_lead_cap_counts_what_the_job_already_charged_the_lead() -> None:
    """max_credits_per_lead: a call that would take its lead past the cap is refused, whatever the job has left;
    the other leads are not affected, and the note says how many calls, for how many leads."""
    budget = Budget(100.0, lead_cap=3.0, lead_reason="leads reached the cap", lead_spent={1: 2.0})
    assert not budget.reserve(2.0, 1), "2 charged by an earlier stage + 2 > 3"
    assert budget.reserve(1.0, 1) and budget.reserve(2.0, 2) and budget.reserve(1.0, 2)
    assert not budget.reserve(1.0, 2), "two calls in flight already hold lead 2's cap"
    budget.settle(2.0, 0.0, 2)  # found nothing: lead 2 has room again
    assert budget.reserve(2.0, 2)
    assert budget.hold_roomiest(0.0, [1, 2, 3]) == (3, None) and budget.hold_roomiest(0.0, [1, 2]) == (1, None)
    assert budget.hold_roomiest(0.0, []) == (None, None)
    assert budget.reserve(5.0), "a call for no lead is capped by the job's limit only"
    assert budget.note() == "leads reached the cap: 2 paid lookups not made for 2 leads"
    one = Budget(100.0, lead_cap=1.0, lead_reason="leads reached the cap")
    assert not one.reserve(2.0, 1)
    # one call for one lead said "1 company lookups not made for 1 leads"
    assert one.note("company lookup") == "leads reached the cap: 1 company lookup not made for 1 lead"
    with pytest.raises(OverBudget, match="leads reached the cap"):
        budget.require(1.0, 1)
