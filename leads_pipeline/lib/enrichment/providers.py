"""The catalog of enrichment sources and company providers: what each supplies and what it costs, in credits.

A credit is the project's unit of spend, shown to users before and after a job. Prices follow the "no data, no
charge" rule: a provider call is charged only when it produced at least one applied value; the provider's own
metering (tokens, USD) is kept in the fact's details for reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass

from leads_pipeline.lib.enrichment.companies import COMPANY_FIELDS
from leads_pipeline.lib.errors import ConfigurationError

SOURCE_ASSETS: dict[str, str] = {
    "email": "email_contacts",
    "phone": "phone_contacts",
    "linkedin": "linkedin_profiles",
    "company": "company_profiles",
}
"""``leads enrich --sources`` names and the Dagster asset that enriches each (contact discovery owns the first
three)."""

SOURCE_CREDITS_PER_LEAD: dict[str, float] = {"email": 1.0, "phone": 1.0, "linkedin": 1.0}
"""Estimated credits per lead missing the field, for the contact sources whose assets meter their own calls."""

SOURCE_FIELD: dict[str, str] = {"email": "email", "phone": "phone", "linkedin": "linkedin_url"}
"""The lead column a contact source fills: a lead that has it needs no lookup unless overwriting."""


@dataclass(frozen=True)
class CompanyProvider:
    name: str
    credits: float
    supplies: frozenset[str]
    seconds: float
    description: str


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
            1.0,
            frozenset(COMPANY_FIELDS),
            2.0,
            "Gemini research grounded in Google Search, structured answer with cited sources",
        ),
        CompanyProvider(
            "apify_search",
            0.5,
            frozenset({"company_domain", "website", "company_linkedin_url"}),
            3.0,
            "Apify Google Search actor: official website and LinkedIn company page",
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
