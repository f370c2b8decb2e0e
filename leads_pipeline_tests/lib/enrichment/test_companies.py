"""Company identity, name normalization, the industry taxonomy and research answers validated into facts."""

from __future__ import annotations

import csv
import gzip

import pandas as pd
import pytest

from leads_pipeline.lib.clients.actors import SearchResult
from leads_pipeline.lib.clients.gemini import CompanyResearch, Source
from leads_pipeline.lib.countries import COUNTRY_PROBLEM, FORMER_COUNTRY_PROBLEM
from leads_pipeline.lib.enrichment.companies import (
    Identity,
    email_domain,
    from_research,
    from_search,
    identify,
    normalize_company_name,
)
from leads_pipeline.lib.enrichment.taxonomy import SECTORS, classify_industry, size_range
from leads_pipeline.lib.normalize import country_codes
from leads_pipeline_tests.paths import SHARED_DATA

ACME = Identity("acme.io", "acme.io", "email", "Acme Analytics")


def _research(**overrides: object) -> CompanyResearch:
    values: dict[str, object] = {
        "found": True,
        "name": "Acme Analytics, Inc.",
        "website": "https://www.acme.io",
        "industry": "Computer Software / Engineering",
        "employee_count": 120,
        "annual_revenue_usd": 14_500_000.0,
        "technologies": ["AWS", "HubSpot", "AWS"],
        "linkedin_url": "https://www.linkedin.com/company/acme-analytics",
        "twitter_url": "https://twitter.com/acme",
        "facebook_url": None,
        "hq_city": "Austin",
        "hq_country": "US",
        "sources": [Source(uri="https://www.acme.io", title="acme.io")],
        "search_queries": ["Acme Analytics company profile"],
        "model": "gemini-3-flash-preview",
        "total_tokens": 321,
    }
    return CompanyResearch(**{**values, **overrides})  # type: ignore[arg-type]


def test_grounded_research_becomes_facts_with_sources() -> None:
    answer = from_research(_research(), ACME)

    facts = {f.field: f for f in answer.facts}
    assert answer.status == "found" and not answer.rejected
    assert facts["website"].value == facts["company_domain"].value == "acme.io"
    assert facts["industry"].value == "Technology, Information and Media"
    assert facts["industry"].details["raw"] == "Computer Software / Engineering"
    assert facts["employee_count"].value == "120" and facts["company_size"].value == "51-200"
    assert facts["annual_revenue"].value == "14500000.00"
    assert facts["technologies"].value == '["AWS", "HubSpot"]'
    assert facts["company_linkedin_url"].value == "https://www.linkedin.com/company/acme-analytics"
    assert facts["hq_country"].value == "US"
    assert all(f.confidence == 80 for f in answer.facts)
    assert facts["hq_city"].details["sources"] == [{"uri": "https://www.acme.io", "title": "acme.io"}]


def test_a_company_name_researched_in_lines_is_stored_in_one_as_an_import_stores_it() -> None:
    """The company name of a research answer became the lead's company as the model wrote it: with a line break
    ("Acme Analytics,\nInc."), one an import, ``leads bulk set`` or a CRM pull would have made a space."""
    answer = from_research(_research(name=" Acme  Analytics,\r\nInc. "), ACME)
    assert {f.field: f.value for f in answer.facts}["company"] == "Acme Analytics, Inc."


def test_ungrounded_research_is_less_confident() -> None:
    answer = from_research(_research(sources=[]), ACME)
    assert {f.confidence for f in answer.facts} == {60}


def test_bad_values_are_rejected_not_applied() -> None:
    answer = from_research(
        _research(
            employee_count=-5,
            hq_country="Yugoslavia",
            linkedin_url="https://www.linkedin.com/in/jane",
            industry="Other Industry",
            annual_revenue_usd=1e15,
        ),
        ACME,
    )

    fields = {f.field for f in answer.facts}
    assert not fields & {
        "employee_count",
        "company_size",
        "hq_country",
        "company_linkedin_url",
        "industry",
        "annual_revenue",
    }
    reasons = {r.field: r.reason for r in answer.rejected}
    assert reasons["hq_country"] == FORMER_COUNTRY_PROBLEM
    assert reasons["industry"] == "not in the industry taxonomy"
    assert reasons["employee_count"] == "not a headcount"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("XK", "XK"),
        ("de", "DE"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("United Kingdom", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("Scotland", "GB"),
        ("Wales", "GB"),
        ("Northern Ireland", "GB"),
        ("DEU", "DE"),
        ("ZZ", None),
    ],
)
def test_headquarters_country_is_read_as_the_import_reads_it(given: str, stored: str | None) -> None:
    """An answer of "UK" was rejected (not an alpha-2 code) although the import reads the lead's own "UK" as GB:
    the answer's country goes through the import's reading, Kosovo's XK included."""
    answer = from_research(_research(hq_country=given), ACME)
    facts = {f.field: f.value for f in answer.facts}
    imported = country_codes(pd.Series([given], dtype="string")).values.iloc[0]
    assert facts.get("hq_country") == stored == (imported if pd.notna(imported) else None)
    assert [r.reason for r in answer.rejected if r.field == "hq_country"] == ([] if stored else [COUNTRY_PROBLEM])


def test_an_answer_about_another_company_is_rejected_whole() -> None:
    answer = from_research(_research(website="https://other.com"), ACME)
    assert answer.status == "rejected" and not answer.facts
    assert "described other.com, not acme.io" in answer.rejected[0].reason
    by_name = from_research(
        _research(name="Zenith Corp", website=None), Identity("name:acme analytics", None, None, "Acme Analytics")
    )
    assert by_name.status == "rejected"


def test_not_found_has_no_facts() -> None:
    answer = from_research(_research(found=False), ACME)
    assert answer.status == "not_found" and not answer.facts


def test_search_results_need_the_company_name_in_the_title() -> None:
    results = [
        SearchResult("q", 1, "Acme Analytics Group - Official Site", "https://www.acme-group.com/", None),
        SearchResult("q", 2, "Acme Analytics - Official Site", "https://www.acme.io/", None),
        SearchResult("q", 3, "Acme Analytics | LinkedIn", "https://www.linkedin.com/company/acme-analytics", None),
    ]
    answer = from_search(results, Identity("name:acme analytics", None, None, "Acme Analytics"))

    facts = {f.field: f.value for f in answer.facts}
    assert facts == {
        "website": "acme-group.com",
        "company_domain": "acme-group.com",
        "company_linkedin_url": "https://www.linkedin.com/company/acme-analytics",
    }
    unrelated = [SearchResult("q", 1, "Zenith | LinkedIn", "https://www.linkedin.com/company/zenith", None)]
    assert from_search(unrelated, ACME).status == "not_found"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Acme, Inc.", "acme"),
        ("ACME Inc", "acme"),
        ("The Acme Company LLC", "acme"),
        ("Müller GmbH & Co. KG", "mueller"),
    ],
)
def test_company_names_normalize_for_matching(name: str, key: str) -> None:
    assert normalize_company_name(name) == key


def test_identity_prefers_a_domain_and_ignores_free_mail() -> None:
    assert email_domain("jane@gmail.com") is None
    assert email_domain("jane@acme.io") == "acme.io"
    assert identify("Acme", "acme", None, None, "jane@gmail.com") == Identity("name:acme", None, None, "Acme")
    assert identify("Acme", "acme", None, "acme.io", "jane@x.com") == Identity("acme.io", "acme.io", "website", "Acme")
    assert identify(None, None, None, None, None) is None


def test_every_industry_of_the_sample_data_has_a_sector() -> None:
    with gzip.open(SHARED_DATA / "datablist" / "organizations-10000.csv.gz", "rt", encoding="utf-8") as handle:
        labels = {row["Industry"] for row in csv.DictReader(handle)}
    unclassified = {label for label in labels if classify_industry(label) is None}
    assert unclassified == {"Other Industry"}
    assert {classify_industry(label) for label in labels} - {None} <= set(SECTORS)
    assert classify_industry("Banking / Mortgage") == "Financial Services"
    assert classify_industry("Real Estate / Mortgage") == "Real Estate and Equipment Rental Services"
    assert classify_industry("information technology and services") == "Technology, Information and Media"


@pytest.mark.parametrize(
    ("employees", "band"), [(1, "1-10"), (10, "1-10"), (11, "11-50"), (10001, "10001+"), (0, None)]
)
def test_size_ranges(employees: int, band: str | None) -> None:
    assert size_range(employees) == band
