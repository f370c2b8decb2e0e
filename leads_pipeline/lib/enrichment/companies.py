"""Company identity and research answers as validated facts.

A company is looked up once, under its domain (from the lead's company domain, website, or a work email), or
under its normalized name when no domain is known. A provider's answer becomes facts only after validation: a
value that does not parse (a website that is not a URL, a country that is not ISO 3166) or an answer about
another company is rejected with a reason and never applied.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from leads_pipeline.lib.clients.actors import SearchResult
from leads_pipeline.lib.countries import COUNTRY_PROBLEM
from leads_pipeline.lib.enrichment.taxonomy import classify_industry, size_range
from leads_pipeline.lib.normalize import clean_value, company_key, linkedin_urls, one_value, website_to_domain

if TYPE_CHECKING:  # the clients load Dagster and the providers' libraries, which an estimate does not use
    from leads_pipeline.lib.clients.gemini import CompanyResearch

FREE_MAIL_LIST = (
    Path(__file__).resolve().parents[2] / "data" / "email_lists" / "free_email_provider_domains_freemail.txt"
)
PLATFORM_DOMAINS = frozenset(
    {"linkedin.com", "twitter.com", "x.com", "facebook.com", "google.com", "wikipedia.org", "crunchbase.com"}
)

LEAD_COLUMNS: dict[str, str] = {
    "company": "company",
    "company_domain": "company_domain",
    "website": "website",
    "industry": "industry",
    "employee_count": "employee_count",
    "annual_revenue": "annual_revenue",
}
"""Company facts that are also canonical lead columns (the lead's visible value)."""


@dataclass(frozen=True)
class CompanyFact:
    """One validated value a provider gave for a company field."""

    field: str
    value: str
    confidence: int
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    field: str
    value: str
    reason: str


@dataclass(frozen=True)
class ProviderAnswer:
    """What one provider said about one company: facts to apply, values rejected, whether it found anything."""

    status: str  # found | not_found | rejected
    facts: tuple[CompanyFact, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    name: str | None = None
    sources: tuple[str, ...] = ()
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_cache(self) -> dict[str, Any]:
        """The JSON stored in ``company_profiles.profile``: enough to rebuild the answer from the cache."""
        return {
            "facts": [
                {"field": f.field, "value": f.value, "confidence": f.confidence, "details": f.details}
                for f in self.facts
            ],
            "rejected": [{"field": r.field, "value": r.value, "reason": r.reason} for r in self.rejected],
        }

    @classmethod
    def from_cache(
        cls, status: str, name: str | None, profile: dict[str, Any], sources: list[str], details: dict[str, Any]
    ) -> ProviderAnswer:
        """The answer as it was bought, ``details`` (``company_profiles.details``: the provider's metering, such
        as Gemini's tokens) included: a rerun charging it again bills it with the same record as the first run."""
        return cls(
            status=status,
            facts=tuple(CompanyFact(f["field"], f["value"], f["confidence"], f["details"]) for f in profile["facts"]),
            rejected=tuple(Rejected(r["field"], r["value"], r["reason"]) for r in profile.get("rejected", [])),
            name=name,
            sources=tuple(sources),
            details=details,
        )


@lru_cache(maxsize=1)
def free_mail_domains() -> frozenset[str]:
    """Mailbox providers whose domain says nothing about the employer (gmail.com, yahoo.com, ...)."""
    lines = FREE_MAIL_LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line.strip() and not line.startswith("#"))


def domains(values: list[str | None]) -> list[str | None]:
    """Bare host names of websites or domains (``None`` where a value is not one), vectorized."""
    series = pd.Series(values, dtype="string")
    return [None if pd.isna(v) else str(v) for v in website_to_domain(series).values]


@lru_cache(maxsize=1 << 16)
def normalize_company_name(name: str | None) -> str | None:
    """The matching key of a company name: case, accents, punctuation and legal suffixes dropped.

    Cached: the vectorized normalizer costs milliseconds per call, and a batch compares the same few names
    once per lead."""
    if not name or not name.strip():
        return None
    value = company_key(pd.Series([name], dtype="string")).iloc[0]
    return None if pd.isna(value) else str(value)


def email_domain(email: str | None) -> str | None:
    """The employer's domain from a work email; None for free-mail and malformed addresses."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().casefold()
    if "." not in domain or domain in free_mail_domains():
        return None
    return domain


@dataclass(frozen=True)
class Identity:
    """How a lead's company is looked up: a domain when one is known (and where it came from), else a name."""

    key: str
    domain: str | None
    domain_source: str | None
    name: str | None


def identify(
    company: str | None, company_key_: str | None, domain: str | None, website_domain: str | None, email: str | None
) -> Identity | None:
    """The lookup identity of a lead's company, or None when nothing identifies it."""
    for candidate, source in ((domain, "company_domain"), (website_domain, "website"), (email_domain(email), "email")):
        if candidate:
            return Identity(candidate, candidate, source, company)
    if company_key_:
        return Identity(f"name:{company_key_}", None, None, company)
    return None


def _linkedin_company(url: str | None) -> str | None:
    if not url:
        return None
    value = linkedin_urls(pd.Series([url], dtype="string")).values.iloc[0]
    return str(value) if not pd.isna(value) and "/company/" in str(value) else None


_SOCIAL = {
    "company_twitter_url": re.compile(r"^https?://(www\.)?(twitter|x)\.com/[A-Za-z0-9_]+/?$"),
    "company_facebook_url": re.compile(r"^https?://(www\.)?facebook\.com/[^\s/?#]+/?$"),
}


def from_research(research: CompanyResearch, identity: Identity) -> ProviderAnswer:
    """Validated facts from a Gemini research answer; an answer about another company is rejected whole.

    Grounded answers (with cited pages) get confidence 80, ungrounded ones 60: a source is what makes a value
    checkable. Every fact carries the cited pages, search queries, model and token counts.
    """
    sources = tuple(s.uri for s in research.sources)
    details: dict[str, Any] = {
        "sources": [{"uri": s.uri, "title": s.title} for s in research.sources],
        "queries": research.search_queries,
        "model": research.model,
        "tokens": research.total_tokens,
    }
    if not research.found:
        return ProviderAnswer("not_found", name=None, sources=sources, details=details)
    confidence = 80 if sources else 60
    facts: list[CompanyFact] = []
    rejected: list[Rejected] = []

    def add(field_name: str, value: object | None, valid: str | None, reason: str) -> None:
        if value is None or value == "" or value == []:
            return
        if valid is None:
            rejected.append(Rejected(field_name, str(value), reason))
        else:
            facts.append(CompanyFact(field_name, valid, confidence, details))

    website = domains([research.website])[0] if research.website else None
    if research.website and identity.domain and website and website != identity.domain:
        reason = f"Gemini described {website}, not {identity.domain}"
        return ProviderAnswer(
            "rejected", rejected=(Rejected("website", research.website, reason),), sources=sources, details=details
        )
    name_key = normalize_company_name(research.name)
    if identity.domain is None and identity.name and name_key != normalize_company_name(identity.name):
        reason = f"Gemini described {research.name!r}, not {identity.name!r}"
        return ProviderAnswer(
            "rejected", rejected=(Rejected("company", str(research.name), reason),), sources=sources, details=details
        )
    # as an import stores a company: one line, spaces collapsed (a model's answer may hold a line break)
    add("company", research.name, clean_value("company", research.name) if research.name else None, "empty name")
    add("website", research.website, website, "not a website URL")
    add("company_domain", research.website, website, "not a website URL")
    sector = classify_industry(research.industry)
    if research.industry:
        if sector is None:
            rejected.append(Rejected("industry", research.industry, "not in the industry taxonomy"))
        else:
            facts.append(CompanyFact("industry", sector, confidence, {**details, "raw": research.industry}))
    employees = research.employee_count
    valid_employees = employees if employees is not None and 0 < employees < 5_000_000 else None
    add("employee_count", employees, None if valid_employees is None else str(valid_employees), "not a headcount")
    add("company_size", employees, size_range(valid_employees), "not a headcount")
    revenue = research.annual_revenue_usd
    valid_revenue = revenue if revenue is not None and 0 <= revenue < 1e13 else None
    add("annual_revenue", revenue, None if valid_revenue is None else f"{valid_revenue:.2f}", "not a USD amount")
    technologies = sorted({t.strip() for t in research.technologies if t and t.strip()})
    add("technologies", technologies or None, json.dumps(technologies) if technologies else None, "no technologies")
    add("company_linkedin_url", research.linkedin_url, _linkedin_company(research.linkedin_url), "not a company page")
    for field_name, url in (
        ("company_twitter_url", research.twitter_url),
        ("company_facebook_url", research.facebook_url),
    ):
        add(field_name, url, url if url and _SOCIAL[field_name].match(url) else None, "not a profile URL")
    add("hq_city", research.hq_city, research.hq_city.strip() if research.hq_city else None, "empty city")
    # Read as the import reads a country column, so that an answer of "UK" or "United Kingdom" is GB as the lead's
    # own "UK" is, and a code the import refuses (a former country) is refused here too.
    country, problem = one_value("country", research.hq_country or "")
    add("hq_country", research.hq_country, country, problem or COUNTRY_PROBLEM)
    return ProviderAnswer(
        "found" if facts else "not_found",
        facts=tuple(facts),
        rejected=tuple(rejected),
        name=research.name,
        sources=sources,
        details=details,
    )


def from_search(results: list[SearchResult], identity: Identity) -> ProviderAnswer:
    """Website and LinkedIn company page from web search results whose title names the company (confidence 70).

    A result counts only when the company's normalized name appears in the page title: the first hit for a
    name is often a namesake, and a wrong website poisons every later lookup.
    """
    key = normalize_company_name(identity.name)
    facts: list[CompanyFact] = []
    if not key:
        return ProviderAnswer("not_found")
    matching = [r for r in results if key in (normalize_company_name(r.title) or "")]
    details = {"queries": sorted({r.query for r in results})}
    sites = [r for r in matching if (domains([r.url])[0] or "") not in PLATFORM_DOMAINS and "linkedin.com" not in r.url]
    if identity.domain is None and sites:
        site = domains([sites[0].url])[0]
        if site:
            source = {**details, "sources": [{"uri": sites[0].url, "title": sites[0].title}]}
            facts += [CompanyFact("website", site, 70, source), CompanyFact("company_domain", site, 70, source)]
    for result in matching:
        page = _linkedin_company(result.url)
        if page:
            source = {**details, "sources": [{"uri": result.url, "title": result.title}]}
            facts.append(CompanyFact("company_linkedin_url", page, 70, source))
            break
    uris = tuple(d["uri"] for f in facts for d in f.details.get("sources", []))
    return ProviderAnswer("found" if facts else "not_found", facts=tuple(facts), sources=uris, details=details)
