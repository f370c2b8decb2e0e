"""Apify actors for discovery: web search, LinkedIn profile extraction and people search (apify-client).

Every typed method is one actor run: ``actor(id).call(run_input=..., logger=None)`` (``logger=None`` stops the
client from streaming the run log and sleeping at the end of every call), then the run's dataset read page by
page. ``run_actor`` is the general form and also reports what the run cost (``usageTotalUsd``).

The actor ids are settings. The defaults name the public actors whose input and output the sandbox imitates
(``apify/google-search-scraper``, ``dev_fusion/Linkedin-Profile-Scraper``); no public actor takes a first
name, last name and domain, so ``people_search_actor`` must name one that does (input ``firstName``,
``lastName``, ``domain``; Apollo-style output) before it is pointed at the real service. The ids and the records
read from the datasets are in ``actors``, which loads neither Dagster nor apify-client.

apify-client retries a 429 with its own backoff but never spaces its requests, so a stage's concurrent runs, and
several stages at once, each send as fast as they can under one token. Once a stage calls ``pace``, every request
(each attempt) takes a slot of the token's bucket first (``_PacedTransport``). Apify counts 250,000 requests a
minute per user and, per resource (one actor, run, dataset), 60 requests a second by default (30 in older copies):
https://docs.apify.com/api/v2#rate-limiting. A stage's requests go to one actor (its runs' starts) and to the runs
and datasets that follow, so 20/s per token (``requests_per_second``) keeps any one resource well inside its limit
with room for other clients of the account. Both limits count requests, per user or per actor, whichever stage
sends them: every stage (company_profiles' searches too) paces its requests in the token's one bucket, under the
key ``apify``, rather than a bucket per stage that together could send the sum of their rates to one actor.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, ClassVar

import dagster as dg
import impit
import pydantic
from apify_client import ApifyClient
from apify_client.errors import ApifyApiError, ApifyClientError
from apify_client.http_clients import ImpitHttpClient
from pydantic import Field, PrivateAttr

from leads_pipeline.lib.clients.actors import (
    GOOGLE_SEARCH_ACTOR,
    LINKEDIN_PROFILE_ACTOR,
    PEOPLE_SEARCH_ACTOR,
    ActorRun,
    ExperienceData,
    LinkedInProfileData,
    PersonMatch,
    PhoneMatch,
    SearchResult,
)
from leads_pipeline.lib.clients.http import MalformedResponseError, parse_retry_after, redact, require
from leads_pipeline.lib.enrichment.pacing import paced_by_key
from leads_pipeline.lib.errors import ConfigurationError, LeadsError, PermanentError, TransientError
from leads_pipeline.lib.ratelimit import Pacer
from leads_pipeline.lib.wording import plain_number


class _PacedTransport(ImpitHttpClient):
    """apify-client's own transport, each attempt (its retries too) taking a slot of ``pacer`` first; a 429 with a
    Retry-After pauses the bucket for every caller sharing the token, not only the one refused."""

    pacer: Pacer | None = None

    def send_request(
        self,
        *,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | Iterator[bytes] | None,
        timeout: float | None,
        stream: bool,
    ) -> impit.Response:
        if self.pacer is not None:
            self.pacer.acquire()
        response = super().send_request(
            method=method, url=url, headers=headers, content=content, timeout=timeout, stream=stream
        )
        if self.pacer is not None and response.status_code == 429:
            hinted = parse_retry_after(response.headers.get("Retry-After"))
            if hinted:
                self.pacer.pause(hinted)
        return response


class ApifyResource(dg.ConfigurableResource):
    """Apify API access; ``token`` comes from ``APIFY_TOKEN``."""

    token: str | None = Field(default=None, repr=False, description="Apify API token (secret).")
    api_url: str = Field(default="https://api.apify.com", description="API root; the client appends /v2.")
    timeout_s: float = Field(default=30.0, description="Limit for each HTTP request to the API.")
    run_timeout_s: float = Field(default=300.0, description="How long to wait for an actor run to finish.")
    max_retries: int = Field(default=4, description="Retries of 429, 5xx and network errors (apify-client's own).")
    min_delay_between_retries_s: float = Field(default=0.5, description="First wait between retries.")
    dataset_page_size: int = Field(default=1000, description="Dataset items fetched per request.")
    results_per_page: int = Field(default=10, description="Search results read per query.")
    google_search_actor: str = Field(default=GOOGLE_SEARCH_ACTOR, description="The actor that searches Google.")
    linkedin_profile_actor: str = Field(
        default=LINKEDIN_PROFILE_ACTOR, description="The actor that reads LinkedIn profiles."
    )
    people_search_actor: str = Field(
        default=PEOPLE_SEARCH_ACTOR, description="The actor that finds a person's email and phone numbers."
    )
    requests_per_second: float | None = Field(
        default=20.0, description="Most API requests a second under this token, from every run at once (paced stages)."
    )

    PROVIDER: ClassVar[str] = "apify"
    ENV_VAR: ClassVar[str] = "APIFY_TOKEN"
    URL_ENV_VAR: ClassVar[str] = "APIFY_API_URL"
    RATE_ENV_VAR: ClassVar[str] = "APIFY_REQUESTS_PER_SECOND"

    _client: ApifyClient | None = PrivateAttr(default=None)
    _transport: _PacedTransport | None = PrivateAttr(default=None)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def is_configured(self) -> bool:
        return bool(self.token)

    @contextmanager
    def paced(self, database_url: str, per_second: float | None = None) -> Iterator[Pacer | None]:
        """Within the block every API request of this resource, each attempt, takes a slot of the token's bucket
        kept in ``database_url`` (``SharedTokenBucket``), shared by every run pacing the token, at ``per_second``
        (company_profiles' run config) or ``requests_per_second``. Not paced (None) without a rate or a token."""

        def attach(bucket: Pacer | None) -> None:
            self._api()  # builds the transport the bucket goes on
            if self._transport is not None:
                self._transport.pacer = bucket

        rate = per_second or self.requests_per_second
        with paced_by_key(database_url, self.PROVIDER, self.token, rate, attach) as bucket:
            yield bucket

    def run_actor(self, actor_id: str, run_input: dict[str, Any]) -> ActorRun:
        """Run ``actor_id`` to completion and read its whole default dataset."""
        client = self._api()
        try:
            run = client.actor(actor_id).call(
                run_input=run_input,
                logger=None,
                timeout=timedelta(seconds=self.timeout_s),
                wait_duration=timedelta(seconds=self.run_timeout_s),
            )
            if run is None:
                raise TransientError(f"Apify run of {actor_id} vanished before it finished; try again")
            if run.status != "SUCCEEDED":
                raise self._run_failed(actor_id, run.id, str(run.status), run.status_message)
            dataset = client.dataset(run.default_dataset_id)
            items = list(dataset.iterate_items(chunk_size=self.dataset_page_size))
        except ApifyApiError as exc:
            raise self._api_error(actor_id, exc) from None
        except (ApifyClientError, pydantic.ValidationError, ValueError) as exc:
            message = redact(str(exc), self.token)
            raise MalformedResponseError(f"Apify answered {actor_id} with an unreadable body: {message}") from None
        except impit.TimeoutException:
            raise TransientError(
                f"Apify did not answer {actor_id} within {plain_number(self.timeout_s)} s"
                f" ({self.max_retries + 1} attempts)"
            ) from None
        except impit.HTTPError as exc:
            raise TransientError(f"could not reach Apify at {self.api_url}: {redact(str(exc), self.token)}") from None
        if not all(isinstance(item, dict) for item in items):
            raise MalformedResponseError(f"Apify dataset of {actor_id} run {run.id} holds non-object items")
        return ActorRun(actor_id, run.id, str(run.status), items, run.usage_total_usd)

    def google_search(self, query: str) -> list[SearchResult]:
        """Organic web results for ``query`` (one SERP page of ``results_per_page``)."""
        run_input = {"queries": query, "resultsPerPage": self.results_per_page, "maxPagesPerQuery": 1}
        run = self.run_actor(self.google_search_actor, run_input)
        return [
            SearchResult(
                query=str((page.get("searchQuery") or {}).get("term") or query),
                position=int(result.get("position") or 0),
                title=str(result.get("title") or ""),
                url=str(result["url"]),
                description=result.get("description"),
            )
            for page in run.items
            for result in _objects(page.get("organicResults"), "organicResults", self.google_search_actor)
            if result.get("url")
        ]

    def google_search_many(self, queries: Iterable[str]) -> tuple[dict[str, list[SearchResult]], float]:
        """Organic results per query for many queries in one actor run, and what the run cost in USD."""
        wanted = list(dict.fromkeys(q.strip() for q in queries if q.strip()))
        if not wanted:
            return {}, 0.0
        run_input = {"queries": "\n".join(wanted), "resultsPerPage": self.results_per_page, "maxPagesPerQuery": 1}
        run = self.run_actor(self.google_search_actor, run_input)
        results: dict[str, list[SearchResult]] = {query: [] for query in wanted}
        for page in run.items:
            term = str((page.get("searchQuery") or {}).get("term") or "")
            for result in _objects(page.get("organicResults"), "organicResults", self.google_search_actor):
                if result.get("url"):
                    results.setdefault(term, []).append(
                        SearchResult(
                            term,
                            int(result.get("position") or 0),
                            str(result.get("title") or ""),
                            str(result["url"]),
                            result.get("description"),
                        )
                    )
        return results, float(run.usage_total_usd or 0.0)

    def linkedin_profiles(self, urls: Iterable[str]) -> list[LinkedInProfileData]:
        """Profiles for the LinkedIn URLs the actor could read; URLs it could not are left out."""
        return self.linkedin_profiles_run(urls)[0]

    def linkedin_profiles_run(self, urls: Iterable[str]) -> tuple[list[LinkedInProfileData], float]:
        """``linkedin_profiles`` and what the run cost in USD."""
        profile_urls = list(dict.fromkeys(urls))
        if not profile_urls:
            return [], 0.0
        run = self.run_actor(self.linkedin_profile_actor, {"profileUrls": profile_urls})
        profiles = [_profile(item) for item in run.items if not item.get("error") and item.get("linkedinUrl")]
        return profiles, float(run.usage_total_usd or 0.0)

    def people_search(self, first_name: str, last_name: str, domain: str) -> list[PersonMatch]:
        """People named ``first_name last_name`` at the company with ``domain``, with contact details."""
        return self.search_people(first_name, last_name, domain)[0]

    def search_people(self, first_name: str, last_name: str, domain: str) -> tuple[list[PersonMatch], float]:
        """``people_search`` and what the run cost in USD (0 when the run reports no usage)."""
        run_input = {"firstName": first_name, "lastName": last_name, "domain": domain}
        run = self.run_actor(self.people_search_actor, run_input)
        matches = [_person(item, self.people_search_actor) for item in run.items]
        return matches, float(run.usage_total_usd or 0.0)

    def _api(self) -> ApifyClient:
        token = require(self.token, provider="Apify", env_var=self.ENV_VAR)
        with self._client_lock:
            if self._client is None:
                timeout = timedelta(seconds=self.timeout_s)
                self._transport = _PacedTransport(
                    token=token,
                    max_retries=self.max_retries,
                    min_delay_between_retries=timedelta(seconds=self.min_delay_between_retries_s),
                    timeout_short=timeout,
                    timeout_medium=timeout,
                    timeout_long=timeout,
                    timeout_max=timeout,
                )
                self._client = ApifyClient.with_custom_http_client(
                    token, api_url=self.api_url, http_client=self._transport
                )
            return self._client

    def _api_error(self, actor_id: str, exc: ApifyApiError) -> LeadsError:
        status = exc.status_code
        detail = f"HTTP {status} {exc.type or ''}: {redact(str(exc.message), self.token)}"
        if status in (401, 403):
            return ConfigurationError(f"Apify rejected the token ({detail}); check {self.ENV_VAR}")
        if status == 404:
            return PermanentError(f"Apify has no {actor_id} or no such run/dataset ({detail}); check the actor id")
        if status == 429 or status >= 500:
            return TransientError(f"Apify failed for {actor_id} after {exc.attempt} attempts ({detail})")
        return PermanentError(f"Apify refused the run of {actor_id} ({detail}); check the run input")

    @staticmethod
    def _run_failed(actor_id: str, run_id: str, status: str, message: str | None) -> LeadsError:
        text = f"Apify run {run_id} of {actor_id} ended {status}: {message or 'no status message'}"
        if status == "ABORTED":
            return PermanentError(text)
        return TransientError(text)


def _objects(value: Any, field: str, actor_id: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedResponseError(f"{actor_id} returned a {field} that is not a list of objects: {value!r}")
    return value


def _degree(value: Any) -> int | None:
    """LinkedIn's connection degree ("1st", "2nd", "3rd", or a number) as an int."""
    text = str(value or "").strip()
    return int(text[0]) if text[:1].isdigit() else None


def _profile(item: dict[str, Any]) -> LinkedInProfileData:
    return LinkedInProfileData(
        url=str(item["linkedinUrl"]),
        first_name=item.get("firstName"),
        last_name=item.get("lastName"),
        headline=item.get("headline"),
        location=item.get("addressWithCountry"),
        photo_url=item.get("profilePic"),
        connection_degree=_degree(item.get("connectionDegree")),
        job_title=item.get("jobTitle"),
        company_name=item.get("companyName"),
        experience=tuple(
            ExperienceData(job.get("title"), job.get("companyName"), job.get("jobStartedOn"), job.get("jobEndedOn"))
            for job in _objects(item.get("experiences"), "experiences", "LinkedIn profile actor")
        ),
    )


def _person(item: dict[str, Any], actor_id: str) -> PersonMatch:
    organization = item.get("organization") or {}
    return PersonMatch(
        first_name=item.get("first_name"),
        last_name=item.get("last_name"),
        title=item.get("title"),
        seniority=item.get("seniority"),
        email=item.get("email"),
        email_status=item.get("email_status"),
        phones=tuple(
            PhoneMatch(str(p.get("sanitized_number") or p.get("raw_number")), p.get("type"))
            for p in _objects(item.get("phone_numbers"), "phone_numbers", actor_id)
            if p.get("sanitized_number") or p.get("raw_number")
        ),
        linkedin_url=item.get("linkedin_url"),
        company_domain=organization.get("primary_domain"),
        company_name=organization.get("name"),
    )
