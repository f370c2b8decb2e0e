"""The LinkedIn stage of one batch: find profile URLs for leads without one, read the profiles, keep the photos.

Actor runs are batched (one Google-search run carries many leads' queries; one scraper run many profile URLs)
and at most ``max_concurrent_runs`` run at once. Each run's answer is written as facts the moment it returns,
each lead charged the price of what was found for it (the run's USD shared among its leads in details), so a
killed run never buys the same answer twice: a lead with a ``linkedin_search`` (or ``linkedin_profile``) fact from
this batch, or a fresh one, is not asked again. A run carries only as many leads as the credit budget can pay for.
A lead whose fresh people-search match (bought by the email or phone stage) names a profile URL takes it from there
at no cost: searching Google for it again paid a second credit for a URL already bought.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leads_pipeline.lib.clients.actors import LinkedInProfileData
from leads_pipeline.lib.contacts import people
from leads_pipeline.lib.contacts.failures import Failures
from leads_pipeline.lib.contacts.linkedin import DEFAULT_THRESHOLD, best_profile, canonical_profile_url, search_query
from leads_pipeline.lib.contacts.media import MediaError, store_image
from leads_pipeline.lib.credits import Budget, PriceItem, charge, price
from leads_pipeline.lib.errors import TransientError
from leads_pipeline.lib.store import contacts as store
from leads_pipeline.lib.store.audit import mask
from leads_pipeline.lib.store.db import connect

if TYPE_CHECKING:  # the resource loads Dagster and apify-client, which the stage's estimate does not use
    from leads_pipeline.lib.clients.apify import ApifyResource

FIELDS = ("linkedin_url", "linkedin_search", "linkedin_profile", people.FIELD)


@dataclass(frozen=True)
class LinkedInOptions:
    overwrite: bool = False
    discover: bool = True
    extract: bool = True
    threshold: float = DEFAULT_THRESHOLD
    queries_per_run: int = 50
    profiles_per_run: int = 50
    max_concurrent_runs: int = 2
    download_photos: bool = True
    media_dir: Path = Path(".leads/media")
    chunk_size: int = 500
    cache_days: int = 30


@dataclass
class LinkedInStats:
    leads: int = 0
    skipped_done: int = 0
    searched: int = 0
    found: int = 0
    below_threshold: int = 0
    from_people_search: int = 0
    """Leads whose URL came free from a fresh people-search match the email or phone stage bought."""
    profiles: int = 0
    photos: int = 0
    photo_errors: int = 0
    runs: int = 0
    leads_updated: int = 0
    scores: list[float] = field(default_factory=list)
    over_budget: int = 0
    """Leads not searched, or profiles not read, because the credit budget did not allow them."""
    failures: Failures = field(default_factory=Failures)
    """Leads whose search or profile run failed: no fact, so a rerun asks again."""


class LinkedInStage:
    def __init__(
        self,
        database_url: str,
        batch_id: str,
        apify: ApifyResource,
        options: LinkedInOptions,
        log: Callable[[str], None] = lambda _m: None,
        budget: Budget | None = None,
        progress: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.database_url = database_url
        self.batch_id = batch_id
        self.budget = budget or Budget(None)
        self.apify = apify
        self.options = options
        self.log = log
        self.progress = progress
        """Told how many leads each chunk held once it is written (the job's progress)."""
        self.stats = LinkedInStats()
        self._max_age = timedelta(days=options.cache_days)
        self._lock = threading.Lock()

    def run(self) -> LinkedInStats:
        with connect(self.database_url, autocommit=True) as reader:
            for chunk in store.batch_lead_chunks(reader, self.batch_id, self.options.chunk_size):
                self._chunk(reader, chunk)
                self.log(f"linkedin: {self.stats.leads:,} leads done")
                self.progress(len(chunk))
        return self.stats

    def _fresh(self, fact: dict[str, Any] | None) -> bool:
        return fact is not None and fact["observed_at"] > datetime.now(UTC) - self._max_age

    def _chunk(self, reader: store.Conn, chunk: list[dict[str, Any]]) -> None:
        self.stats.leads += len(chunk)
        leads = {lead["id"]: lead for lead in chunk}
        latest = store.latest_facts(reader, list(leads), FIELDS)
        accepted: dict[int, tuple[str, float, dict[str, Any]]] = {}
        to_search: list[dict[str, Any]] = []
        for lead in chunk:
            search = latest.get((lead["id"], "linkedin_search"))
            if lead["linkedin_url"] and not self.options.overwrite:
                continue
            if not self.options.discover or search_query(lead) is None:
                continue
            if self._fresh(search) and search is not None:
                if search["value"] and not lead["linkedin_url"]:
                    accepted[lead["id"]] = (search["value"], search["confidence"] / 100, search["details"])
                self.stats.skipped_done += 1
                continue
            matched = self._matched_url(latest.get((lead["id"], people.FIELD)))
            if matched is not None:
                accepted[lead["id"]] = matched
                self.stats.from_people_search += 1
                continue
            to_search.append(lead)
        groups = [
            to_search[i : i + self.options.queries_per_run]
            for i in range(0, len(to_search), self.options.queries_per_run)
        ]
        with ThreadPoolExecutor(max(1, self.options.max_concurrent_runs)) as pool:
            for found in pool.map(self._search, groups):
                accepted.update(found)
        profiles: dict[int, LinkedInProfileData] = {}
        if self.options.extract:
            wanted: dict[str, list[int]] = {}  # URL -> the leads that want it (the same person in two lists)
            for lead in chunk:
                url = accepted[lead["id"]][0] if lead["id"] in accepted else lead["linkedin_url"]
                url = canonical_profile_url(url) if url else None
                if url and (self.options.overwrite or not self._fresh(latest.get((lead["id"], "linkedin_profile")))):
                    wanted.setdefault(url, []).append(lead["id"])
            items = list(wanted.items())
            size = self.options.profiles_per_run
            with ThreadPoolExecutor(max(1, self.options.max_concurrent_runs)) as pool:
                for got in pool.map(self._profiles, [dict(items[i : i + size]) for i in range(0, len(items), size)]):
                    profiles.update(got)
        self._write(leads, accepted, profiles)

    def _matched_url(self, fact: dict[str, Any] | None) -> tuple[str, float, dict[str, Any]] | None:
        """The profile URL a fresh people-search match gave the lead (as accepted: URL, score, details), if any."""
        _usable, match = people.stored_match(fact, self._max_age)
        url = canonical_profile_url(match.linkedin_url) if match is not None and match.linkedin_url else None
        if url is None or fact is None:
            return None
        return url, fact["confidence"] / 100, {"source": fact["source"], "from": people.FIELD}

    def _affordable(self, item: PriceItem, lead_ids: list[int]) -> set[int]:
        """The leads whose result of ``item`` the budget and their caps can pay for (its price is held for each)."""
        fit = self.budget.reserve_each(price(item), lead_ids)
        if len(fit) < len(lead_ids):
            with self._lock:
                self.stats.over_budget += len(lead_ids) - len(fit)
        return set(fit)

    @contextmanager
    def _held(self, item: PriceItem, lead_ids: Iterable[int]) -> Iterator[None]:
        """Around the run ``item`` was held for, for each of ``lead_ids``: a run that raises bought nothing, so
        every hold is freed before the error goes on (the caller settles a run that answered, lead by lead)."""
        with ExitStack() as holds:
            for lead_id in lead_ids:
                holds.enter_context(self.budget.released_on_error(price(item), lead_id))
            yield

    def _search(self, group: list[dict[str, Any]]) -> dict[int, tuple[str, float, dict[str, Any]]]:
        fit = self._affordable("apify_google_search", [lead["id"] for lead in group])
        group = [lead for lead in group if lead["id"] in fit]
        if not group:
            return {}
        queries = {lead["id"]: search_query(lead) or "" for lead in group}
        try:
            with self._held("apify_google_search", queries):
                results, usd = self.apify.google_search_many(queries.values())
        except TransientError as error:
            self.log(f"linkedin: search run for {len(group)} leads failed: {mask(str(error))}")
            self.stats.failures.add(f"apify:{self.apify.google_search_actor}", error, queries)
            return {}
        with self._lock:
            self.stats.runs += 1
        share = round(usd / len(group), 6)
        facts, accepted = [], {}
        for lead in group:
            query = queries[lead["id"]]
            found = [(r.url, r.title, r.description) for r in results.get(query, [])]
            best, ranked = best_profile(lead, found, self.options.threshold)
            details = {
                "query": query,
                "threshold": self.options.threshold,
                "candidates": [
                    {"url": s.url, "score": s.score, "matched": list(s.matched), "title": s.title} for s in ranked[:5]
                ],
            }
            credits, billing = charge(
                "apify_google_search", found=best is not None, provider_cost=share, provider_unit="usd"
            )
            with self._lock:
                self.stats.searched += 1
                self.stats.below_threshold += best is None and bool(ranked)
            confidence = round(best.score * 100) if best else 0
            source = f"apify:{self.apify.google_search_actor}"
            facts.append(
                store.Fact(
                    lead["id"],
                    "linkedin_search",
                    best.url if best else None,
                    source,
                    confidence,
                    credits,
                    {**details, **billing},
                )
            )
            if best:
                accepted[lead["id"]] = (best.url, best.score, details)
        with connect(self.database_url) as conn:  # bought: record now
            store.insert_facts(conn, self.batch_id, facts)
        for fact in facts:
            self.budget.settle(price("apify_google_search"), fact.cost, fact.lead_id)
        return accepted

    def _profiles(self, wanted: dict[str, list[int]]) -> dict[int, LinkedInProfileData]:
        """Read the profiles at ``wanted``'s URLs in one actor run. A URL several leads share is read once,
        charged to the one furthest from its cap; the others get a 0-cost copy of the answer, so none of them is
        asked for it again."""
        held = {url: self.budget.hold_roomiest(price("apify_linkedin_profile"), ids) for url, ids in wanted.items()}
        paying = {url: payer for url, (payer, refused) in held.items() if payer is not None and refused is None}
        if len(paying) < len(held):
            with self._lock:
                self.stats.over_budget += len(held) - len(paying)
        if not paying:
            return {}
        try:
            with self._held("apify_linkedin_profile", paying.values()):
                found, usd = self.apify.linkedin_profiles_run(paying)
        except TransientError as error:
            self.log(f"linkedin: profile run for {len(paying)} URLs failed: {mask(str(error))}")
            failed = (lead_id for url in paying for lead_id in wanted[url])
            self.stats.failures.add(f"apify:{self.apify.linkedin_profile_actor}", error, failed)
            return {}
        with self._lock:
            self.stats.runs += 1
        by_url = {canonical_profile_url(p.url) or p.url: p for p in found}
        share = round(usd / len(paying), 6)
        source = f"apify:{self.apify.linkedin_profile_actor}"
        paid: list[store.Fact] = []
        copies: list[store.Fact] = []
        out: dict[int, LinkedInProfileData] = {}
        for url, payer in paying.items():
            profile = by_url.get(url)
            credits, billing = charge(
                "apify_linkedin_profile", found=profile is not None, provider_cost=share, provider_unit="usd"
            )
            value: str | None = None
            confidence = 0
            details: dict[str, Any] = {"url": url, "error": "not found or not public"}
            if profile is not None:
                value, confidence = profile.headline, 90
                details = {
                    "url": url,
                    "headline": profile.headline,
                    "job_title": profile.job_title,
                    "company": profile.company_name,
                    "location": profile.location,
                    "connection_degree": profile.connection_degree,
                    "photo_url": profile.photo_url,
                    "experience": [
                        {"title": e.title, "company": e.company, "start": e.start, "end": e.end}
                        for e in profile.experience
                    ],
                }
                out |= dict.fromkeys(wanted[url], profile)
            paid.append(store.Fact(payer, "linkedin_profile", value, source, confidence, credits, details | billing))
            copies += [
                store.Fact(lead_id, "linkedin_profile", value, source, confidence, 0.0, details | {"reused": True})
                for lead_id in wanted[url]
                if lead_id != payer
            ]
        with connect(self.database_url) as conn:  # bought: record now
            store.insert_facts(conn, self.batch_id, paid + copies)
        for fact in paid:
            self.budget.settle(price("apify_linkedin_profile"), fact.cost, fact.lead_id)
        return out

    def _write(
        self,
        leads: dict[int, dict[str, Any]],
        accepted: dict[int, tuple[str, float, dict[str, Any]]],
        profiles: dict[int, LinkedInProfileData],
    ) -> None:
        facts: list[store.Fact] = []
        updates: dict[int, str | None] = {}
        for lead_id, (url, score, details) in accepted.items():
            self.stats.found += 1
            self.stats.scores.append(score)
            source = details.get("source") or f"apify:{self.apify.google_search_actor}"
            facts.append(
                store.Fact(lead_id, "linkedin_url", url, source, round(score * 100), 0.0, {"score": score, **details})
            )
            if leads[lead_id]["linkedin_url"] != url:
                updates[lead_id] = url
        for lead_id, profile in profiles.items():
            self.stats.profiles += 1
            if profile.connection_degree is not None:
                facts.append(
                    store.Fact(
                        lead_id,
                        "linkedin_connection_degree",
                        str(profile.connection_degree),
                        f"apify:{self.apify.linkedin_profile_actor}",
                        90,
                    )
                )
            if self.options.download_photos and profile.photo_url:
                try:
                    path = store_image(profile.photo_url, self.options.media_dir, timeout=5.0)
                except MediaError as error:
                    self.stats.photo_errors += 1
                    facts.append(
                        store.Fact(
                            lead_id,
                            "linkedin_photo",
                            None,
                            "download",
                            0,
                            0.0,
                            {"url": profile.photo_url, "error": str(error)},
                        )
                    )
                    continue
                self.stats.photos += 1
                facts.append(
                    store.Fact(
                        lead_id,
                        "linkedin_photo",
                        str(path),
                        "download",
                        90,
                        0.0,
                        {"url": profile.photo_url, "sha256": path.stem},
                    )
                )
        with connect(self.database_url) as conn:
            store.insert_facts(conn, self.batch_id, facts)
            self.stats.leads_updated += len(
                store.update_lead_columns(conn, "linkedin_url", updates, overwrite=self.options.overwrite)
            )
