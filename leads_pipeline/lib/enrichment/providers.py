"""The catalog of enrichment sources and company providers: what each supplies and what it costs, in credits.

Prices come from the one price list (``lib/credits.py``, which says what a credit is); the "no data, no charge"
rule holds for every source: a provider call is charged only when it found something.
"""

from __future__ import annotations

from dataclasses import dataclass

from leads_pipeline.lib.credits import PriceItem, price
from leads_pipeline.lib.errors import ConfigurationError

COMPANY_FIELDS: tuple[str, ...] = (
    "company",
    "company_domain",
    "website",
    "industry",
    "employee_count",
    "company_size",
    "annual_revenue",
    "technologies",
    "company_linkedin_url",
    "company_twitter_url",
    "company_facebook_url",
    "hq_city",
    "hq_country",
)
"""The fields company enrichment fills; the first seven of the lead's own columns are updated too."""

SOURCE_ASSETS: dict[str, str] = {
    "email": "email_contacts",
    "phone": "phone_contacts",
    "linkedin": "linkedin_profiles",
    "company": "company_profiles",
}
"""``leads enrich --sources`` names and the Dagster asset that enriches each (contact discovery owns the first
three)."""

EMAIL_CANDIDATES = 4
"""Addresses the email stage verifies at most per lead (its ``max_candidates`` default): the worst case."""

SOURCE_CALLS_PER_LEAD: dict[str, tuple[PriceItem, ...]] = {
    "email": ("zerobounce",),
    "phone": ("apify_people_search",),
    "linkedin": ("apify_google_search", "apify_linkedin_profile"),
}
"""The paid calls a contact source is expected to make per lead missing the field: email = one paid verdict on the
address found; phone = one people-search match with a direct dial; linkedin = one URL found and its profile read."""

SOURCE_CREDITS_PER_LEAD: dict[str, tuple[float, float]] = {
    source: (sum(map(price, SOURCE_CALLS_PER_LEAD[source])), worst)
    for source, worst in (
        ("email", EMAIL_CANDIDATES * price("zerobounce") + price("apify_people_search")),
        ("phone", price("apify_people_search") + price("twilio_lookup")),
        ("linkedin", price("apify_google_search") + price("apify_linkedin_profile")),
    )
}
"""(expected, at most) credits per lead missing the field, for the contact sources, from the price list.
Expected: the price of its ``SOURCE_CALLS_PER_LEAD``. At most adds every candidate verified and the people search
(email), and a Twilio line-type lookup of the number found (phone)."""

SOURCE_FIELD: dict[str, str] = {"email": "email", "phone": "phone", "linkedin": "linkedin_url"}
"""The lead column a contact source fills: a lead that has it needs no lookup unless overwriting."""


@dataclass(frozen=True)
class CompanyProvider:
    name: str
    credits: float
    supplies: frozenset[str]
    seconds: float
    description: str
    price_item: PriceItem | None = None
    """The price list's item for the provider's charge (None for the free ones)."""


COMPANY_PROVIDERS: dict[str, CompanyProvider] = {
    p.name: p
    for p in (
        CompanyProvider(
            "domain",
            0.0,
            frozenset({"company_domain", "website"}),
            0.0,
            "offline: the lead's own company domain, website or work-email domain",
        ),
        CompanyProvider(
            "gemini",
            price("gemini"),
            frozenset(COMPANY_FIELDS),
            2.0,
            "Gemini research grounded in Google Search, structured answer with cited sources",
            "gemini",
        ),
        CompanyProvider(
            "apify_search",
            price("apify_company_search"),
            frozenset({"company_domain", "website", "company_linkedin_url"}),
            3.0,
            "Apify Google Search actor: official website and LinkedIn company page",
            "apify_company_search",
        ),
    )
}


def parse_sources(text: str) -> list[str]:
    """``email,phone`` or ``all`` as an ordered list of known source names; unknown names are an error."""
    names = [part.strip().casefold() for part in text.split(",") if part.strip()]
    if not names:
        raise ConfigurationError(f"--sources is empty; use {', '.join(SOURCE_ASSETS)} or all")
    if "all" in names:
        return list(SOURCE_ASSETS)
    unknown = [n for n in names if n not in SOURCE_ASSETS]
    if unknown:
        raise ConfigurationError(
            f"--sources has unknown source(s) {', '.join(unknown)}; expected {', '.join(SOURCE_ASSETS)} or all"
        )
    return list(dict.fromkeys(names))


def require_assets(sources: list[str], available: set[str]) -> list[str]:
    """The asset keys of ``sources``; a source whose asset is not deployed is a clear error, not a silent skip."""
    missing = [s for s in sources if SOURCE_ASSETS[s] not in available]
    if missing:
        detail = ", ".join(f"{s} (asset {SOURCE_ASSETS[s]})" for s in missing)
        raise ConfigurationError(
            f"source(s) {detail} are not in this deployment's Dagster definitions yet; "
            f"enrich with {', '.join(s for s in sources if s not in missing) or 'company'} instead"
        )
    return [SOURCE_ASSETS[s] for s in sources]
