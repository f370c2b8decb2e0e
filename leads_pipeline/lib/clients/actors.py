"""What the Apify actors are and return: their ids and kinds, and the records ``ApifyResource`` reads from their
datasets. Apart from the resource (``apify``), which loads Dagster and apify-client, so that the contact stages,
their estimates and the sandbox's emulated actors use them without either."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ActorKind = Literal["google_search", "linkedin_profiles", "people_search"]

GOOGLE_SEARCH_ACTOR = "apify/google-search-scraper"
LINKEDIN_PROFILE_ACTOR = "dev_fusion/Linkedin-Profile-Scraper"
PEOPLE_SEARCH_ACTOR = "leads-pipeline/people-search"
DEFAULT_ACTORS: dict[str, ActorKind] = {
    GOOGLE_SEARCH_ACTOR: "google_search",
    LINKEDIN_PROFILE_ACTOR: "linkedin_profiles",
    PEOPLE_SEARCH_ACTOR: "people_search",
}


@dataclass(frozen=True)
class ActorRun:
    actor_id: str
    run_id: str
    status: str
    items: list[dict[str, Any]]
    usage_total_usd: float | None


@dataclass(frozen=True)
class SearchResult:
    query: str
    position: int
    title: str
    url: str
    description: str | None


@dataclass(frozen=True)
class ExperienceData:
    title: str | None
    company: str | None
    start: str | None
    end: str | None


@dataclass(frozen=True)
class LinkedInProfileData:
    url: str
    first_name: str | None
    last_name: str | None
    headline: str | None
    location: str | None
    photo_url: str | None
    connection_degree: int | None
    job_title: str | None
    company_name: str | None
    experience: tuple[ExperienceData, ...]


@dataclass(frozen=True)
class PhoneMatch:
    number: str
    type: str | None


@dataclass(frozen=True)
class PersonMatch:
    first_name: str | None
    last_name: str | None
    title: str | None
    seniority: str | None
    email: str | None
    email_status: str | None
    phones: tuple[PhoneMatch, ...]
    linkedin_url: str | None
    company_domain: str | None
    company_name: str | None
