"""Company enrichment of one batch: group leads by company, run the waterfall once per company, write facts.

Each company (a unit) is looked up once for all its leads; answers are cached per provider with a TTL, so a
rerun, a resumed run or another job reuses them for free. A unit's facts and lead updates are written in one
transaction, replacing what this batch wrote before, so a killed run resumes without paying twice: the paid
answer is in the cache with the job that paid it, and the cost is written again on exactly one fact. An answer
read back from the cache is the answer bought (its facts, and the provider's metering the billing record cites),
so the rerun's facts are the first run's; another job's facts from it differ only in being free and unbilled.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from leads_pipeline.lib.credits import Budget
from leads_pipeline.lib.enrichment.companies import (
    LEAD_COLUMNS,
    CompanyFact,
    Identity,
    ProviderAnswer,
    domains,
    from_research,
    from_search,
    identify,
    normalize_company_name,
)
from leads_pipeline.lib.enrichment.pacing import pacer
from leads_pipeline.lib.enrichment.providers import COMPANY_PROVIDERS
from leads_pipeline.lib.enrichment.templates import Template
from leads_pipeline.lib.enrichment.waterfall import Lookup, Outcome, run_waterfall
from leads_pipeline.lib.errors import LeadsError, TransientError
from leads_pipeline.lib.ratelimit import Pacer, bucket_key
from leads_pipeline.lib.store import enrichment as store
from leads_pipeline.lib.store import purchases
from leads_pipeline.lib.store.db import ThreadConnections, connect

if TYPE_CHECKING:  # the clients load Dagster and the providers' libraries, which an estimate does not use
    from leads_pipeline.lib.clients.apify import ApifyResource
    from leads_pipeline.lib.clients.gemini import GeminiResource

SOURCE = "company"
IMPORTED_CONFIDENCE = 50
"""The confidence of a value a lead already had without any fact behind it (typed in, imported)."""
REJECTED_TTL = timedelta(days=1)
"""An answer that did not parse is retried the next day, not after the full cache TTL."""


@dataclass(frozen=True)
class Unit:
    identity: Identity
    leads: tuple[dict[str, Any], ...]
    needed: frozenset[str]


@dataclass
class Stats:
    leads: int = 0
    companies: int = 0
    no_identity: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    cache_hits: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    facts: int = 0
    rejected: int = 0
    failed_leads: int = 0
    transient_failures: int = 0
    credits: float = 0.0
    call_window: dict[str, tuple[float, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def lead_needs(row: dict[str, Any], template: Template, overwrite: bool) -> frozenset[str]:
    """The template's fields this lead lacks (all of them when overwriting)."""
    if overwrite:
        return frozenset(template.company)
    have = set(row["fact_fields"] or ())
    return frozenset(
        f for f in template.company if (row[LEAD_COLUMNS[f]] in (None, "") if f in LEAD_COLUMNS else f not in have)
    )


@dataclass
class PlannedUnit:
    """A company of the batch as :func:`plan_units` groups it: its identity (named after its first lead with a
    company name, else its first lead's), its leads' ids (8 bytes a lead: the run reads their rows a page of
    units at a time), the fields they need, and the batch positions of its first lead (units come in that
    order) and of its first named one."""

    identity: Identity
    lead_ids: array[int]
    needed: frozenset[str]
    first: int
    named: int | None

    def add(self, other: PlannedUnit) -> None:
        earlier = self if self.first < other.first else other
        if other.named is not None and (self.named is None or other.named < self.named):
            name, self.named = other.identity.name, other.named
        else:
            name = self.identity.name if self.named is not None else earlier.identity.name
        self.identity, self.first = replace(earlier.identity, name=name), earlier.first
        self.lead_ids.extend(other.lead_ids)
        self.needed |= other.needed


def plan_units(
    pages: Iterable[list[dict[str, Any]]],
    template: Template,
    overwrite: bool,
    emails: Callable[[list[int]], dict[int, str | None]],
) -> tuple[list[PlannedUnit], int]:
    """The batch's leads grouped by company identity (domain, else normalized name), and its number of leads
    nothing identifies, from pages of leads without their emails: memory grows with the companies, not the
    leads' rows, and ``emails`` is asked only for the leads whose company domain and website name no domain (an
    address is opened only where it decides). The estimate and the run group alike."""
    votes: dict[str, Counter[str]] = {}
    by_key: dict[str, PlannedUnit] = {}
    by_name: dict[str, PlannedUnit] = {}  # leads known only by their company's name, by its key
    orphans = position = 0
    for rows in pages:
        websites = domains([r["website"] for r in rows])
        identities = [
            identify(row["company"], row["company_key"], row["company_domain"], website, None)
            for row, website in zip(rows, websites, strict=True)
        ]
        unnamed = [
            row["id"] for row, identity in zip(rows, identities, strict=True) if not identity or not identity.domain
        ]
        opened = emails(unnamed) if unnamed else {}
        for row, website, identity in zip(rows, websites, identities, strict=True):
            if row["id"] in opened:
                identity = identify(
                    row["company"], row["company_key"], row["company_domain"], website, opened[row["id"]]
                )
            position += 1
            if identity is None:
                orphans += 1
                continue
            unit = PlannedUnit(
                identity,
                array("q", (row["id"],)),
                lead_needs(row, template, overwrite),
                position,
                position if row["company"] else None,
            )
            if identity.domain is None:
                groups, key = by_name, row["company_key"]
            else:
                groups, key = by_key, identity.key
                if row["company_key"]:
                    votes.setdefault(row["company_key"], Counter())[identity.domain] += 1
            if key in groups:
                groups[key].add(unit)
            else:
                groups[key] = unit
    # A lead known only by its company's name joins the company's domain when another lead of the batch with the
    # same normalized name ("Acme, Inc." = "ACME Inc") has one: one lookup per company, not per spelling.
    for key, unit in by_name.items():
        if key in votes:
            domain = votes[key].most_common(1)[0][0]
            unit.identity = Identity(domain, domain, "company_name", unit.identity.name)
            by_key[domain].add(unit)
        else:
            by_key[unit.identity.key] = unit
    return sorted(by_key.values(), key=lambda u: u.first), orphans


def _pages(units: list[PlannedUnit], size: int) -> Iterator[list[PlannedUnit]]:
    """Consecutive units of about ``size`` leads together (a bigger unit alone)."""
    page: list[PlannedUnit] = []
    leads = 0
    for unit in units:
        page.append(unit)
        leads += len(unit.lead_ids)
        if leads >= size:
            yield page
            page, leads = [], 0
    if page:
        yield page


def domain_answer(identity: Identity) -> ProviderAnswer:
    """The free, offline provider: the company's domain and website from the lead's own data."""
    if identity.domain is None:
        return ProviderAnswer("not_found")
    confidence = {"company_domain": 90, "website": 85, "email": 60, "company_name": 60}[
        identity.domain_source or "email"
    ]
    details = {"from": identity.domain_source}
    facts = (
        CompanyFact("company_domain", identity.domain, confidence, details),
        CompanyFact("website", identity.domain, confidence, details),
    )
    return ProviderAnswer("found", facts=facts)


class CompanyEnricher:
    """Runs the company waterfall for every unit of a batch on a thread pool (providers are I/O bound)."""

    def __init__(
        self,
        database_url: str,
        job_id: str,
        template: Template,
        *,
        overwrite: bool,
        budget: Budget,
        gemini: GeminiResource,
        apify: ApifyResource,
        ttl: timedelta,
        concurrency: int = 8,
        requests_per_second: dict[str, float] | None = None,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.database_url = database_url
        self.job_id = job_id
        self.template = template
        self.overwrite = overwrite
        self.budget = budget
        self.gemini = gemini
        self.apify = apify
        self.ttl = ttl
        self.concurrency = max(1, concurrency)
        self.log = log
        self.stats = Stats()
        rates = requests_per_second or {}
        self._gemini_pacer = self._pacer(rates.get("gemini"))
        self._apify_rate = rates.get("apify_search")
        self._connections = ThreadConnections(database_url)

    def _pacer(self, per_second: float | None) -> Pacer | None:
        """Gemini's bucket, kept in the database under its API key: the runs at once (a backfill's, the drop
        folder's) share the rate instead of each sending all of it."""
        key = self.gemini.api_key
        return pacer(per_second, shared=(self.database_url, bucket_key("gemini", key)) if key else None)

    @contextmanager
    def _connection(self) -> Iterator[store.Connection]:
        """One connection per worker thread, reused across units and closed after an error (``held``); each ``with``
        block is one transaction."""
        with self._connections.held() as conn, conn.transaction():
            yield conn

    def run(self) -> Stats:
        """Groups the batch a page of leads at a time, then runs its companies a page of leads at a time: a list of
        300,000 leads is never held whole (its rows and opened emails took most of a gigabyte)."""
        with connect(self.database_url) as conn:
            planned, orphans = plan_units(
                store.company_input_pages(conn, self.job_id),
                self.template,
                self.overwrite,
                partial(store.lead_emails, conn),
            )
            leads = orphans + sum(len(u.lead_ids) for u in planned)
            store.start_source(conn, self.job_id, SOURCE, leads)
            store.advance_source(conn, self.job_id, SOURCE, orphans)
        self.stats.leads, self.stats.companies, self.stats.no_identity = leads, len(planned), orphans
        try:
            # Apify's searches are paced per request, in the token's one bucket (``ApifyResource.paced``), with the
            # contact stages' actor runs: Apify counts requests, not runs, per user and per actor, and the
            # LinkedIn stage starts runs of the same Google-search actor. Paced once per search here, under a
            # bucket of its own, a search of 3 to 5 requests took one slot, and the two buckets together could
            # send twice the token's rate to that one actor.
            with (
                self.apify.paced(self.database_url, self._apify_rate),
                connect(self.database_url, autocommit=True) as conn,
                ThreadPoolExecutor(self.concurrency, thread_name_prefix="company") as pool,
            ):
                running: Iterator[None] = iter(())
                for page in _pages(planned, store.COMPANY_INPUT_PAGE):
                    queued = pool.map(self._unit, self._with_leads(conn, page))
                    for _ in running:  # the previous page ran while this one was read
                        pass
                    running = queued
                for _ in running:
                    pass
        finally:
            self._connections.close()
            if self._gemini_pacer is not None:
                self._gemini_pacer.close()
        return self.stats

    def _with_leads(self, conn: store.Connection, page: list[PlannedUnit]) -> list[Unit]:
        """The page's units with their leads' rows, read in one query (a lead deleted since it was grouped is
        left out, and a unit left without leads is not looked up)."""
        rows = store.company_inputs(conn, self.job_id, [i for u in page for i in u.lead_ids])
        units = [Unit(u.identity, tuple(rows[i] for i in u.lead_ids if i in rows), u.needed) for u in page]
        return [u for u in units if u.leads]

    # --- one company ---------------------------------------------------------------------------------------

    def rates(self) -> dict[str, float]:
        """Calls per second each provider got while it was being called (first call's start to last call's end)."""
        return {
            p: round(self.stats.calls[p] / max(1e-6, end - start), 2)
            for p, (start, end) in self.stats.call_window.items()
        }

    def _unit(self, unit: Unit) -> None:
        lead_ids = [r["id"] for r in unit.leads]
        if not unit.needed:
            with self._connection() as conn:
                store.replace_company_facts(conn, self.job_id, lead_ids, [], {})
                store.advance_source(conn, self.job_id, SOURCE, len(lead_ids))
            return
        try:
            needs = {r["id"]: lead_needs(r, self.template, self.overwrite) for r in unit.leads}
            outcome = run_waterfall(
                self.template,
                set(unit.needed),
                lambda provider: self._lookup(unit.identity, provider),
                self.budget,
                is_cached=lambda provider: self._is_cached(unit.identity, provider),
                payers=lambda provider: sorted(i for i, n in needs.items() if n & COMPANY_PROVIDERS[provider].supplies),
            )
            with self._connection() as conn:
                self._write(conn, unit, outcome)
                if outcome.skipped:
                    store.note_source(conn, self.job_id, SOURCE, "; ".join(sorted({r for _, r in outcome.skipped})))
                store.advance_source(conn, self.job_id, SOURCE, len(lead_ids))
        except LeadsError as exc:
            self.log(f"company lookup failed for {unit.identity.key}: {exc}")
            with self._connection() as conn:
                store.record_failures(conn, self.job_id, SOURCE, lead_ids, str(exc))
                store.advance_source(conn, self.job_id, SOURCE, len(lead_ids))
            with self.stats.lock:
                self.stats.failed_leads += len(lead_ids)
                self.stats.transient_failures += isinstance(exc, TransientError)
            return
        with self.stats.lock:
            for provider, reason in outcome.skipped:
                self.stats.skipped[f"{provider}: {reason}"] += 1

    def _is_cached(self, identity: Identity, provider: str) -> bool:
        if provider == "domain":
            return True
        with self._connection() as conn:
            return store.cached_profile(conn, identity.key, provider) is not None

    def _lookup(self, identity: Identity, provider: str) -> Lookup:
        if provider == "domain":
            return Lookup(domain_answer(identity), 0.0, cached=True)
        with self._connection() as conn:
            cached = store.cached_profile(conn, identity.key, provider)
        if cached is None:  # another job may be buying it: wait for that, then look again (lib/store/purchases)
            with self._connection() as conn, purchases.buying(conn, provider, identity.key):
                cached = store.cached_profile(conn, identity.key, provider)
                if cached is None:
                    return self._buy(conn, identity, provider)
        with self.stats.lock:
            self.stats.cache_hits[provider] += 1
        answer = ProviderAnswer.from_cache(cached.status, cached.name, cached.profile, cached.sources, cached.details)
        charged = cached.credits if cached.job_id == self.job_id else 0.0
        return Lookup(answer, charged, cached=True, observed_at=cached.fetched_at)

    def _buy(self, conn: store.Connection, identity: Identity, provider: str) -> Lookup:
        """Call ``provider`` for the company and store its answer on ``conn``, in the transaction holding the
        lookup's lock: a job waiting for it reads the answer once the lock is let go."""
        started = time.monotonic()
        answer = self._call(identity, provider)
        ended = time.monotonic()
        charged = COMPANY_PROVIDERS[provider].credits if answer.status == "found" else 0.0
        store.store_profile(
            conn,
            lookup_key=identity.key,
            provider=provider,
            domain=identity.domain,
            status=answer.status,
            name=answer.name,
            name_key=normalize_company_name(answer.name),
            profile=answer.as_cache(),
            sources=answer.sources,
            credits=charged,
            details=answer.details,
            job_id=self.job_id,
            ttl=REJECTED_TTL if answer.status == "rejected" else self.ttl,
        )
        with self.stats.lock:
            self.stats.calls[provider] += 1
            self.stats.rejected += len(answer.rejected)
            first, last = self.stats.call_window.get(provider, (started, ended))
            self.stats.call_window[provider] = (min(first, started), max(last, ended))
        return Lookup(answer, charged, cached=False)

    def _call(self, identity: Identity, provider: str) -> ProviderAnswer:
        """One provider's answer. A cut or unreadable body (``MalformedResponseError``, after the client's own
        retries) is a transport fault, not an answer: it propagates, so the company is counted as failed and
        asked again by the run's retry instead of being cached as rejected for a day."""
        name = identity.name or identity.domain or ""
        if provider == "gemini":  # paces its retries too, and backs off on a 429
            research = self.gemini.research_company(name, identity.domain, limiter=self._gemini_pacer)
            return from_research(research, identity)
        queries = [f"{name} site:linkedin.com/company"]
        if identity.domain is None:
            queries.insert(0, f"{name} official site")
        return from_search(self.apify.google_search("\n".join(queries)), identity)

    # --- writing -------------------------------------------------------------------------------------------

    def _write(self, conn: store.Connection, unit: Unit, outcome: Outcome) -> None:
        lead_ids = sorted(r["id"] for r in unit.leads)
        best: dict[str, tuple[CompanyFact, str]] = {}
        for provider, lookup in outcome.answers:
            for fact in lookup.answer.facts:
                if fact.field not in best or fact.confidence > best[fact.field][0].confidence:
                    best[fact.field] = (fact, provider)
        column_fields = [f for f in best if f in LEAD_COLUMNS]
        others = (
            store.best_confidences(conn, lead_ids, column_fields, self.job_id)
            if self.overwrite and column_fields
            else {}
        )
        facts: list[store.FactRow] = []
        updates: dict[int, dict[str, Any]] = {}
        rows = {r["id"]: r for r in unit.leads}
        unpaid = {p: lookup.charged for p, lookup in outcome.answers if lookup.charged > 0}
        for lead_id in lead_ids:
            row = rows[lead_id]
            for provider, lookup in outcome.answers:
                for fact in lookup.answer.facts:
                    details = dict(fact.details)
                    if fact.field in LEAD_COLUMNS:
                        winner = best[fact.field][0] is fact
                        applied, reason = self._decide(row, fact, others) if winner else (False, "a better value won")
                        details["applied"] = applied
                        if reason:
                            details["reason"] = reason
                        if applied:
                            updates.setdefault(lead_id, {})[LEAD_COLUMNS[fact.field]] = _typed(fact.field, fact.value)
                    payer = outcome.payers.get(provider, lead_id)
                    cost = unpaid.pop(provider, 0.0) if payer == lead_id else 0.0
                    if cost:
                        details |= _billing(provider, lookup.answer)
                    facts.append(
                        store.FactRow(
                            lead_id,
                            fact.field,
                            fact.value,
                            f"company/{provider}",
                            fact.confidence,
                            cost,
                            details,
                            lookup.observed_at,
                        )
                    )
        store.replace_company_facts(conn, self.job_id, lead_ids, facts, updates)
        with self.stats.lock:
            self.stats.facts += len(facts)
            self.stats.credits += sum(f.cost for f in facts)

    def _decide(
        self, row: dict[str, Any], fact: CompanyFact, others: dict[tuple[int, str], int]
    ) -> tuple[bool, str | None]:
        """Whether the fact becomes the lead's visible value, and why not when it does not."""
        column = LEAD_COLUMNS[fact.field]
        current = row[column]
        if current is None or current == "":
            return True, None
        if _same(fact.field, current, fact.value):
            return False, "confirms the current value"
        if not self.overwrite:
            return False, f"the lead already has {current!r}; --overwrite replaces it"
        held = others.get((row["id"], fact.field), IMPORTED_CONFIDENCE)
        if fact.confidence >= held:
            return True, None
        return False, f"contradicts {current!r}, which has higher confidence {held}"


def _billing(provider: str, answer: ProviderAnswer) -> dict[str, Any]:
    """What the fact carrying a provider's charge records about it: the price item, and the provider's own
    metering when it reports one (Gemini's tokens)."""
    billing: dict[str, Any] = {"price_item": COMPANY_PROVIDERS[provider].price_item}
    tokens = answer.details.get("tokens")
    if tokens is not None:
        billing |= {"provider_cost": tokens, "provider_cost_unit": "tokens"}
    return billing


def _typed(field_name: str, value: str) -> Any:
    if field_name == "employee_count":
        return int(value)
    if field_name == "annual_revenue":
        return Decimal(value)
    return value


def _same(field_name: str, current: Any, value: str) -> bool:
    if field_name in ("employee_count", "annual_revenue"):
        return float(current) == float(value)
    if field_name == "company":
        return normalize_company_name(str(current)) == normalize_company_name(value)
    return str(current).strip().casefold() == value.strip().casefold()
