"""Apify API v2 emulator: actor runs, run polling and dataset items, three actors on the world.

Endpoints (what apify-client 3.x calls): ``POST /v2/acts|actors/{user~name}/runs`` (the run input as the body,
gzip-encoded when >= 1 KiB), ``GET /v2/actor-runs/{id}?waitForFinish=`` and ``GET /v2/datasets/{id}/items``
with the five ``X-Apify-Pagination-*`` headers. Runs execute at once but stay RUNNING for ``apify_run_s``, so
clients poll.

Actors (input -> one dataset item per ...):
- ``google_search``: ``{"queries": "q1\\nq2", "resultsPerPage": 10, "maxPagesPerQuery": 1}`` -> SERP page,
  shaped like apify/google-search-scraper (``searchQuery``, ``organicResults``: position, title, url, ...).
- ``linkedin_profiles``: ``{"profileUrls": [...]}`` -> profile (``linkedinUrl``, ``headline``,
  ``addressWithCountry``, ``profilePic``, ``connectionDegree``, ``experiences``); unknown URLs give
  ``{"linkedinUrl", "error"}``. ``profilePic`` points at the ``/licdn`` emulator of the same app (the world's
  ``media.licdn.com`` URL with its host replaced), so that downloading it stays on the machine.
- ``people_search``: ``{"firstName", "lastName", "domain"}`` -> Apollo-style person (email, phones, title).
The run's ``usageTotalUsd`` is charged per result at the prices below (approximate public pay-per-result
prices).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote_plus

from leads_pipeline.lib.clients.actors import ActorKind
from leads_pipeline.sandbox.http.common import EmulatorSettings, Request, Response, SeededIds
from leads_pipeline.sandbox.http.licdn import LinkedInMediaEmulator, local_url
from leads_pipeline.sandbox.world import Company, Person, World

PRICE_USD: dict[ActorKind, float] = {
    "google_search": 0.0045,
    "linkedin_profiles": 0.004,
    "people_search": 0.005,
}
"""Price per dataset item that counts as a result (a SERP page, a profile found, a person found)."""

_MAX_WAIT_S = 60  # the API caps waitForFinish at 60 s
_NO_LIMIT = 999_999_999_999  # what X-Apify-Pagination-Limit says when no limit was asked for
_USER_ID = "sandboxUser000001"


@dataclass
class _Run:
    id: str
    act_id: str
    dataset_id: str
    store_id: str
    queue_id: str
    started: datetime
    finishes_at: float
    items: int
    input_len: int
    cost_usd: float

    def as_json(self) -> dict[str, Any]:
        done = time.monotonic() >= self.finishes_at
        finished = datetime.now(UTC) if done else None
        run_s = ((finished or datetime.now(UTC)) - self.started).total_seconds()
        return {
            "id": self.id,
            "actId": self.act_id,
            "userId": _USER_ID,
            "startedAt": _iso(self.started),
            "finishedAt": _iso(finished) if finished else None,
            "status": "SUCCEEDED" if done else "RUNNING",
            "statusMessage": f"Finished with {self.items} results" if done else "Running",
            "isStatusMessageTerminal": done,
            "meta": {"origin": "API", "userAgent": "sandbox"},
            "stats": {
                "inputBodyLen": self.input_len,
                "restartCount": 0,
                "runTimeSecs": run_s,
                "computeUnits": 0,
            },
            "options": {"build": "latest", "timeoutSecs": 3600, "memoryMbytes": 1024, "diskMbytes": 2048},
            "buildId": "sandboxBuild00001",
            "buildNumber": "0.1.1",
            "exitCode": 0 if done else None,
            "defaultKeyValueStoreId": self.store_id,
            "defaultDatasetId": self.dataset_id,
            "defaultRequestQueueId": self.queue_id,
            "usageTotalUsd": self.cost_usd,
            "chargedEventCounts": {"result": self.items},
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApifyEmulator:
    name = "apify"

    def __init__(self, world: World, settings: EmulatorSettings, ids: SeededIds) -> None:
        self._settings = settings
        self._ids = ids
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._datasets: dict[str, list[dict[str, Any]]] = {}
        self._actors = {key.casefold(): kind for key, kind in settings.apify_actors.items()}
        index = _SearchIndex(world)
        self._actors_by_kind: dict[ActorKind, Callable[[dict[str, Any]], tuple[list[dict[str, Any]], int]]] = {
            "google_search": partial(_google_search, index),
            "linkedin_profiles": partial(_linkedin_profiles, world),
            "people_search": partial(_people_search, world),
        }

    def api_key(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.query.get("token")

    def error(self, status: int, retry_after_s: int | None) -> Response:
        kinds = {
            429: ("rate-limit-exceeded", "You have exceeded the rate limit. Please try again later."),
            500: ("internal-server-error", "Internal server error"),
            503: ("service-unavailable", "The service is temporarily unavailable"),
        }
        kind, message = kinds.get(status, ("unknown-error", "Unknown error"))
        headers = [("Retry-After", str(retry_after_s))] if retry_after_s else []
        return _error(status, kind, message, headers)

    def handle(self, request: Request) -> Response:
        token = self.api_key(request)
        if not token:
            return _error(401, "token-not-provided", "Authentication token was not provided")
        if not self._settings.for_provider(self.name).accepts(token):
            return _error(401, "user-or-token-not-found", "User was not found or authentication token is not valid")
        parts = request.path.strip("/").split("/")
        match request.method, parts:
            case "POST", ["v2", "acts" | "actors", actor, "runs"]:
                return self._start(actor, request)
            case "GET", ["v2", "actor-runs", run_id]:
                return self._run(run_id, request)
            case "GET", ["v2", "datasets", dataset_id, "items"]:
                return self._items(dataset_id, request)
        return _error(404, "page-not-found", f"We have nothing at {request.method} {request.path}")

    def _start(self, actor: str, request: Request) -> Response:
        actor_id = actor.replace("~", "/")
        kind = self._actors.get(actor_id.casefold())
        if kind is None:
            return _error(404, "record-not-found", f"Actor was not found: {actor_id}")
        try:
            run_input = request.json() or {}
        except ValueError:
            return _error(400, "invalid-input", "Input is not a valid JSON")
        try:
            items, results = self._actors_by_kind[kind](run_input)
        except _InvalidInput as exc:
            return _error(400, "invalid-input", f"Input is not valid: {exc}")
        if kind == "linkedin_profiles":
            media = f"{request.app_url}/{LinkedInMediaEmulator.name}"
            items = [
                {**item, "profilePic": local_url(item["profilePic"], media)} if "profilePic" in item else item
                for item in items
            ]
        cost = round(results * PRICE_USD[kind], 6)
        run = _Run(
            id=self._ids.new(),
            act_id=actor_id,
            dataset_id=self._ids.new(),
            store_id=self._ids.new(),
            queue_id=self._ids.new(),
            started=datetime.now(UTC),
            finishes_at=time.monotonic() + self._settings.apify_run_s,
            items=len(items),
            input_len=len(request.body),
            cost_usd=cost,
        )
        with self._lock:
            self._runs[run.id] = run
            self._datasets[run.dataset_id] = items
        return Response.json(201, {"data": run.as_json()}, cost=cost, cost_unit="usd")

    def _run(self, run_id: str, request: Request) -> Response:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return _error(404, "record-not-found", "Actor run was not found")
        wait = min(_int(request.query.get("waitForFinish"), 0), _MAX_WAIT_S)
        deadline = time.monotonic() + wait
        while time.monotonic() < min(deadline, run.finishes_at):
            time.sleep(min(0.05, max(0.0, run.finishes_at - time.monotonic())))
        return Response.json(200, {"data": run.as_json()})

    def _items(self, dataset_id: str, request: Request) -> Response:
        with self._lock:
            items = self._datasets.get(dataset_id)
        if items is None:
            return _error(404, "record-not-found", "Dataset was not found")
        desc = request.query.get("desc", "").lower() in ("1", "true")
        ordered = list(reversed(items)) if desc else items
        if request.query.get("clean", "").lower() in ("1", "true") or request.query.get("skipEmpty") in (
            "1",
            "true",
        ):
            ordered = [item for item in ordered if item]
        offset = _int(request.query.get("offset"), 0)
        limit = _int(request.query.get("limit"), 0)
        page = ordered[offset : offset + limit] if limit else ordered[offset:]
        if fields := request.query.get("fields"):
            wanted = fields.split(",")
            page = [{name: item[name] for name in wanted if name in item} for item in page]
        headers = [
            ("X-Apify-Pagination-Total", str(len(ordered))),
            ("X-Apify-Pagination-Offset", str(offset)),
            ("X-Apify-Pagination-Count", str(len(page))),
            ("X-Apify-Pagination-Limit", str(limit or _NO_LIMIT)),
            ("X-Apify-Pagination-Desc", "true" if desc else "false"),
        ]
        return Response.json(200, page, headers)


def _error(status: int, kind: str, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response.json(status, {"error": {"type": kind, "message": message}}, headers or [])


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


class _InvalidInput(ValueError):
    """The run input does not match the actor's input schema (the API answers 400 invalid-input)."""


# --- actors -------------------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    """Lower-case words, single-spaced and padded: ``f" {phrase} " in _norm(q)`` is a word match."""
    return " " + " ".join(re.findall(r"[a-z0-9]+(?:[.@'-][a-z0-9]+)*", text.casefold())) + " "


@dataclass(frozen=True)
class _Page:
    url: str
    title: str
    description: str


def _company_pages(company: Company) -> list[_Page]:
    facts = ", ".join(
        part
        for part in (
            company.industry,
            f"{company.hq_city}, {company.hq_country}" if company.hq_city and company.hq_country else None,
        )
        if part
    )
    about = f"{company.name}. {facts}" if facts else company.name
    pages = [_Page(f"https://www.{company.domain}/", f"{company.name} - Official Site", about)]
    if company.linkedin_url:
        pages.append(_Page(company.linkedin_url, f"{company.name} | LinkedIn", f"{about} (LinkedIn)"))
    return pages


def _person_page(person: Person, company: Company | None) -> _Page | None:
    if person.linkedin is None:
        return None
    employer = company.name if company else person.company_domain
    title = " - ".join(p for p in (f"{person.first_name} {person.last_name}", person.title, employer) if p)
    location = f" {person.linkedin.location}." if person.linkedin.location else ""
    return _Page(person.linkedin.url, f"{title} | LinkedIn", f"{person.linkedin.headline}.{location}")


class _SearchIndex:
    """The world's pages with their names normalized once, so that a query is one pass of substring checks.

    A company page matches when the query names the company (name, alias or domain); a profile matches when it
    names the person's first and last name, and ranks higher when it also names the employer. ``site:``
    filters keep only pages under that prefix.
    """

    def __init__(self, world: World) -> None:
        self._companies = [
            (tuple(_norm(n) for n in (c.name, c.domain, *c.aliases)), _company_pages(c)) for c in world.companies
        ]
        self._profiles: list[tuple[str, str, tuple[str, ...], _Page]] = []
        for person in world.people:
            employer = world.company(person.company_domain)
            page = _person_page(person, employer)
            if page is not None:
                names = (employer.name, *employer.aliases) if employer else ()
                employer_names = tuple(_norm(n) for n in (*names, person.company_domain))
                self._profiles.append((_norm(person.first_name), _norm(person.last_name), employer_names, page))

    def search(self, query: str) -> list[_Page]:
        sites = [s.casefold() for s in re.findall(r"site:(\S+)", query)]
        text = _norm(re.sub(r"site:\S+", " ", query))
        scored: list[tuple[int, _Page]] = []
        for names, pages in self._companies:
            if any(name in text for name in names):
                scored.extend((2, page) for page in pages)
        for first, last, employer_names, page in self._profiles:
            if first in text and last in text:
                scored.append((4 if any(name in text for name in employer_names) else 3, page))
        ranked = [page for _, page in sorted(scored, key=lambda sp: (-sp[0], sp[1].url))]
        if not sites:
            return ranked
        return [p for p in ranked if any(re.sub(r"^https?://(www\.)?", "", p.url).startswith(s) for s in sites)]


def _google_search(index: _SearchIndex, run_input: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    queries = [q.strip() for q in str(run_input.get("queries") or "").splitlines() if q.strip()]
    if not queries:
        raise _InvalidInput("Field input.queries is required")
    per_page = max(1, min(_int(str(run_input.get("resultsPerPage", 10)), 10), 100))
    max_pages = max(1, _int(str(run_input.get("maxPagesPerQuery", 1)), 1))
    items: list[dict[str, Any]] = []
    for query in queries:
        pages = index.search(query)
        for number in range(1, max_pages + 1):
            chunk = pages[(number - 1) * per_page : number * per_page]
            if number > 1 and not chunk:
                break
            items.append(
                {
                    "searchQuery": {
                        "term": query,
                        "url": f"https://www.google.com/search?q={quote_plus(query)}",
                        "device": "DESKTOP",
                        "page": number,
                        "type": "SEARCH",
                        "resultsPerPage": per_page,
                    },
                    "resultsTotal": len(pages),
                    "hasNextPage": number * per_page < len(pages),
                    "organicResults": [
                        {
                            "position": (number - 1) * per_page + i,
                            "title": page.title,
                            "url": page.url,
                            "displayedUrl": page.url.removeprefix("https://").rstrip("/").replace("/", " > "),
                            "description": page.description,
                            "type": "organic",
                        }
                        for i, page in enumerate(chunk, start=1)
                    ],
                    "paidResults": [],
                    "relatedQueries": [],
                    "peopleAlsoAsk": [],
                }
            )
    return items, len(items)


def _degree(degree: int | None) -> str | None:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(degree) if degree else None


def _linkedin_profiles(world: World, run_input: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    urls = run_input.get("profileUrls")
    if not isinstance(urls, list) or not urls:
        raise _InvalidInput("Field input.profileUrls is required and must be a non-empty array")
    items: list[dict[str, Any]] = []
    found = 0
    for url in map(str, urls):
        person = world.person_by_linkedin(url)
        if person is None or person.linkedin is None:
            items.append({"linkedinUrl": url, "error": "Profile not found or not public"})
            continue
        found += 1
        profile = person.linkedin
        company = world.company(person.company_domain)
        items.append(
            {
                "linkedinUrl": profile.url,
                "firstName": person.first_name,
                "lastName": person.last_name,
                "fullName": f"{person.first_name} {person.last_name}",
                "headline": profile.headline,
                "addressWithCountry": profile.location,
                "profilePic": profile.photo_url,
                "connectionDegree": _degree(profile.connection_degree),
                "jobTitle": person.title,
                "companyName": company.name if company else None,
                "companyWebsite": f"https://www.{person.company_domain}",
                "experiences": [
                    {
                        "title": job.title,
                        "companyName": job.company,
                        "jobStartedOn": job.start,
                        "jobEndedOn": job.end,
                        "jobStillWorking": job.end is None,
                    }
                    for job in profile.experience
                ],
            }
        )
    return items, found


def _people_search(world: World, run_input: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    first, last, domain = (str(run_input.get(k) or "").strip() for k in ("firstName", "lastName", "domain"))
    if not (first and last and domain):
        raise _InvalidInput("Fields input.firstName, input.lastName and input.domain are required")
    person = world.find_person(first, last, domain)
    if person is None:
        return [], 0
    company = world.company(person.company_domain)
    item = {
        "id": person.id,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "name": f"{person.first_name} {person.last_name}",
        "title": person.title,
        "seniority": person.seniority,
        "departments": [person.department] if person.department else [],
        "email": person.email,
        "email_status": "verified" if person.email else None,
        "linkedin_url": person.linkedin.url if person.linkedin else None,
        "phone_numbers": [
            {"raw_number": phone.number, "sanitized_number": phone.number, "type": phone.line_type}
            for phone in person.phones
        ],
        "country": person.country,
        "organization": {
            "name": company.name if company else None,
            "primary_domain": person.company_domain,
            "industry": company.industry if company else None,
            "estimated_num_employees": company.employee_count if company else None,
        },
    }
    return [item], 1
