"""The Apollo-style people-search actor as a source of emails and direct dials, bought at most once per lead.

One run answers both the email and the phone stage, so its answer is stored as a ``person_match`` fact (source
``apify:<actor>``, cost = the credits of a match (none without one; the run's USD in details), value = the email
found or empty) the moment it is bought. Either stage reuses that fact (this batch's, or a fresh one from an
earlier batch) instead of paying again.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leads_pipeline.lib.clients.actors import PersonMatch, PhoneMatch
from leads_pipeline.lib.credits import Budget, charge, price
from leads_pipeline.lib.store.contacts import Fact, record_paid_fact
from leads_pipeline.lib.store.db import connect

if TYPE_CHECKING:  # the resource loads Dagster and apify-client, which the stage's estimate does not use
    from leads_pipeline.lib.clients.apify import ApifyResource

FIELD = "person_match"


def source_name(apify: ApifyResource) -> str:
    return f"apify:{apify.people_search_actor}"


def stored_match(fact: dict[str, Any] | None, max_age: timedelta) -> tuple[bool, PersonMatch | None]:
    """(usable, match) from a stored ``person_match`` fact: usable when it exists and is fresh."""
    if fact is None or fact["observed_at"] < datetime.now(UTC) - max_age:
        return False, None
    item = (fact["details"] or {}).get("match")
    if not item:
        return True, None
    phones = tuple(PhoneMatch(p["number"], p.get("type")) for p in item.get("phones", ()))
    return True, PersonMatch(**{**item, "phones": phones})


def search_person(
    apify: ApifyResource,
    database_url: str,
    batch_id: str,
    lead_id: int,
    first_name: str,
    last_name: str,
    domain: str,
    stage: str,
    budget: Budget,
) -> PersonMatch | None:
    """Ask the actor once and record the answer (and its credits) at once; the best match or None. ``stage``
    (email, phone) says which stage bought it, so each stage's credits can be told apart. Raises ``OverBudget``
    (nothing asked) when a match's price does not fit the budget or the lead's cap."""
    reserved = price("apify_people_search")
    budget.require(reserved, lead_id)
    with budget.released_on_error(reserved, lead_id):
        matches, usd = apify.search_people(first_name, last_name, domain)
    match = matches[0] if matches else None
    credits, billing = charge("apify_people_search", found=match is not None, provider_cost=usd, provider_unit="usd")
    budget.settle(reserved, credits, lead_id)
    erased = match is not None and _erased(database_url, match)
    if erased:
        match = None  # paid for (the fact keeps the cost), but an erased person's data is not stored again
    details: dict[str, Any] = {
        "query": {"first_name": first_name, "last_name": last_name, "domain": domain},
        "match": dataclasses.asdict(match) if match else None,
        "results": len(matches),
        **billing,
        "stage": stage,
        **({"suppressed": True} if erased else {}),
    }
    value = match.email if match else None
    fact = Fact(lead_id, FIELD, value, source_name(apify), 80 if match else 0, credits, details)
    record_paid_fact(database_url, batch_id, fact)
    return match


def _erased(database_url: str, match: PersonMatch) -> bool:
    """Whether the match's address or one of its numbers belongs to a person erased on request."""
    from leads_pipeline.lib.store.privacy import suppressed_values

    with connect(database_url) as conn:
        return bool(
            suppressed_values(conn, "email", [match.email])
            or suppressed_values(conn, "phone", [p.number for p in match.phones])
        )
