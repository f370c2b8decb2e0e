"""The Apollo-style people-search actor as a source of emails and direct dials, bought at most once per lead.

One run answers both the email and the phone stage, so its answer is stored as a ``person_match`` fact (source
``apify:<actor>``, cost = what the run cost, value = the email found or empty) the moment it is bought. Either
stage reuses that fact (this batch's, or a fresh one from an earlier batch) instead of paying again.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from leads_pipeline.lib.clients.apify import ApifyResource, PersonMatch, PhoneMatch
from leads_pipeline.lib.store.contacts import Fact, record_paid_fact

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
) -> PersonMatch | None:
    """Ask the actor once and record the answer (and its cost) at once; the best match or None. ``stage``
    (email, phone) says which stage bought it, so each stage's credits can be told apart."""
    matches, cost = apify.search_people(first_name, last_name, domain)
    match = matches[0] if matches else None
    details: dict[str, Any] = {
        "query": {"first_name": first_name, "last_name": last_name, "domain": domain},
        "match": dataclasses.asdict(match) if match else None,
        "results": len(matches),
        "cost_unit": "usd",
        "stage": stage,
    }
    fact = Fact(lead_id, FIELD, match.email if match else None, source_name(apify), 80 if match else 0, cost, details)
    record_paid_fact(database_url, batch_id, fact)
    return match
