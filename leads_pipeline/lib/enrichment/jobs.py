"""Enrichment jobs: selecting leads into a batch, estimating cost and time, and the PRD's result shapes.

Estimates count what a job will really ask for: per source, the leads that lack the field (all when
overwriting), plus the checks the contact stages make on leads that have it (an email verdict gone stale, a
profile to read for a LinkedIn URL); for company enrichment, one lookup per company, walking the template's
waterfall with cached answers free. ``estimatedCredits`` is the expected spend (each field stops at the first
provider able to fill it); ``maxCredits`` in the estimate is the worst case (every paid provider asked for every
company).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from leads_pipeline.lib.batches import slug
from leads_pipeline.lib.credits import PAID_VERIFIERS, Budget, PriceItem, price
from leads_pipeline.lib.enrichment.providers import (
    COMPANY_PROVIDERS,
    SOURCE_CALLS_PER_LEAD,
    SOURCE_CREDITS_PER_LEAD,
    SOURCE_FIELD,
)
from leads_pipeline.lib.enrichment.templates import Template
from leads_pipeline.lib.enrichment.waterfall import Lookup, run_waterfall
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store import enrichment as store
from leads_pipeline.lib.wording import credit_amount, plain_number, written_number

if TYPE_CHECKING:  # the company engine loads pandas and pyarrow: the company estimate imports it, not a job's history
    from leads_pipeline.lib.enrichment.companies import Identity, ProviderAnswer

MONTHLY_BUDGET_ENV = "LEADS_MONTHLY_CREDITS"
CONCURRENCY = 8
CONTACT_SECONDS_PER_LEAD = 1.0
BOUGHT_BEFORE = {
    "phone": "f.field = 'person_match'",
    "linkedin": "f.field = 'linkedin_search'"
    " OR (f.field = 'person_match' AND f.details->'match'->>'linkedin_url' IS NOT NULL)",
}
"""Per source, the fresh facts of a lead missing the field that its stage reuses instead of paying for a search
again (a people-search match, answered or not; a LinkedIn URL search, or a match naming the profile): the
estimate of a job run again on the same leads said ~320 credits for a run that spent 12."""
SEARCHABLE = {
    "phone": "l.first_name IS NOT NULL AND l.last_name IS NOT NULL"
    " AND coalesce(l.company_domain, l.website) IS NOT NULL",
    "linkedin": "l.first_name IS NOT NULL AND l.last_name IS NOT NULL",
}
"""Per source, the leads its stage can search for at all: a people search needs both names and a company domain
or website (``PhoneStage._direct_dials``), a LinkedIn search both names (``search_query``)."""
PRIORITIES = {"low": -10, "normal": 0, "high": 10}
"""``--priority`` as Dagster's ``dagster/priority`` run tag (higher runs first in the run queue)."""


def job_key(label: str, now: datetime | None = None) -> str:
    """``enrich-<label>-<UTC time with microseconds>``: a new batch per launch, readable in the Dagster UI."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%f")
    return f"enrich-{slug(label)}-{stamp}"


def check_max_credits(max_credits: float | None, setting: str = "--max-credits") -> None:
    """A cap that bounds spending: ``nan`` was taken (no spend compares above it, so it capped nothing, and the
    job's JSON held NaN), ``inf`` and a negative number meant nothing either; enrich-after-import checked none.
    A negative one from the Dagster UI's run config (``setting`` max_credits) broke the job table's own check:
    a psycopg CheckViolation, retried three times over a minute and a half, then "Exceeded max_retries of 3"."""
    if max_credits is not None and not (math.isfinite(max_credits) and max_credits >= 0):
        raise ConfigurationError(f"{setting} must be a number of credits >= 0; got {written_number(max_credits)}")


def monthly_budget() -> float | None:
    """The account's monthly credit budget (``LEADS_MONTHLY_CREDITS``), read at run time; None = unlimited."""
    raw = os.environ.get(MONTHLY_BUDGET_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{MONTHLY_BUDGET_ENV}={raw!r} is not a number of credits") from None
    if value < 0:
        raise ConfigurationError(f"{MONTHLY_BUDGET_ENV}={raw!r} must be >= 0")
    return value


_RAISE = f"raise {MONTHLY_BUDGET_ENV} or wait for next month (free sources still run with --template basic)"


@dataclass(frozen=True)
class MonthBudget:
    """The month's budget (``LEADS_MONTHLY_CREDITS``) against a job expected to spend ``credits`` in ``calls``
    (each call's price and how many, in the order of the job's sources): what a launch checks and its estimate
    shows, so the estimate says whether the launch would be refused. A launch is refused when nothing is left and
    the job would spend; one that does not fit runs until the budget is used up, when its paid lookups stop
    (``job_budget``) and it ends partial; a free job always runs."""

    budget: float
    used: float
    credits: float
    calls: tuple[tuple[float, int], ...] = ()

    @property
    def left(self) -> float:
        return max(0.0, self.budget - self.used)

    @property
    def refused(self) -> bool:
        return self.credits > 0 and self.left == 0

    @property
    def refusal(self) -> str:
        budget = credit_amount(self.budget)
        return f"the account's monthly budget of {budget} is used up ({plain_number(self.used)} spent); {_RAISE}"

    @property
    def fit(self) -> float:
        """Credits of the job's calls that fit what is left: whole calls only, as a paid call is made only when its
        whole price fits (``Budget.hold``), so 0.5 credit left buys no 1-credit Gemini research."""
        fit = 0.0
        for each, count in self.calls:
            fit += min(count, math.floor((self.left - fit) / each + 1e-9)) * each
        return round(min(fit, self.credits), 4)

    def as_json(self) -> dict[str, Any]:
        """The estimate's ``monthlyBudget``, its ``note`` the sentence the text estimate prints."""
        fit = self.fit
        if self.refused:
            note = f"a launch would be refused: {_RAISE}"
        elif fit < self.credits:
            note = (
                f"~{plain_number(fit)} of the job's ~{credit_amount(self.credits)} fit: its paid lookups would stop"
                " there and it would end partial"
            )
        else:
            note = "the estimated credits fit"
        return {
            "budget": self.budget,
            "usedThisMonth": round(self.used, 4),
            "left": round(self.left, 4),
            "creditsThatFit": fit,
            "launchRefused": self.refused,
            "note": note,
        }


def month_budget(conn: store.Connection, plan: dict[str, Any]) -> MonthBudget | None:
    """The month's budget against a job of this estimate (``estimate``); None without a budget."""
    budget = monthly_budget()
    if budget is None:
        return None
    calls = tuple(
        (price(item), count) for entry in plan["sources"].values() for item, count in entry["paidCalls"].items()
    )
    return MonthBudget(budget, store.credits_this_month(conn), plan["estimatedCredits"], calls)


def launch_refusal(conn: store.Connection, plan: dict[str, Any]) -> str | None:
    """Why a job of this estimate may not be launched (the month's budget is used up and it would spend), else
    None: the one check of every launch, `leads enrich`'s, the enrich-after-import sensor's and a Dagster UI
    run's, which would otherwise start a job whose every paid lookup is refused."""
    month = month_budget(conn, plan)
    return month.refusal if month is not None and month.refused else None


def _cache_days(source: str) -> int:
    """How long the stage of a source in ``BOUGHT_BEFORE`` reuses a paid search's answer: its options'
    ``cache_days`` (imported here: the stages load the provider clients, which the other estimates do not use)."""
    if source == "phone":
        from leads_pipeline.lib.contacts.phone_batch import PhoneOptions

        return PhoneOptions.cache_days
    from leads_pipeline.lib.contacts.linkedin_batch import LinkedInOptions

    return LinkedInOptions.cache_days


def job_budget(
    conn: store.Connection,
    job: store.Job,
    *,
    exclude_prefix: str | None = None,
    template: Template | None = None,
) -> Budget:
    """What the job may still spend: its --max-credits minus what its sources spent (but those whose source starts
    with ``exclude_prefix``: company enrichment rewrites its own facts), and the month's rest. With the job's
    ``template``, each lead may cost at most its ``max_credits_per_lead`` over all the job's stages: the budget
    starts from what the ledger says the job already charged each lead (the same facts, the same exclusion)."""
    limits: list[tuple[float, str]] = []
    if job.max_credits is not None:
        spent = store.credits_used(conn, job.id, exclude_prefix=exclude_prefix)
        reached = f"job {job.id} reached its --max-credits {plain_number(job.max_credits)}"
        limits.append((job.max_credits - spent, reached))
    month = monthly_budget()
    if month is not None:
        used = store.credits_this_month(conn)
        # "before this stage": the stage spends what was left before it stops, and "(888 spent)" beside "900 is
        # used up" read as 12 credits unspent
        limits.append(
            (
                month - used,
                f"the account's monthly budget of {credit_amount(month)} is used up ({plain_number(used)} spent"
                f" before this stage); raise {MONTHLY_BUDGET_ENV} or wait for next month",
            )
        )
    limit, reason = min(limits) if limits else (None, "")
    left = None if limit is None else max(0.0, limit)
    if template is None or template.max_credits_per_lead is None:
        return Budget(left, reason)
    cap = template.max_credits_per_lead
    return Budget(
        left,
        reason,
        lead_cap=cap,
        lead_reason=f"leads reached template {template.name}'s max_credits_per_lead of {plain_number(cap)}",
        lead_spent=store.credits_by_lead(conn, job.id, exclude_prefix=exclude_prefix),
    )


def _typical(provider: str, supplies: frozenset[str]) -> ProviderAnswer:
    from leads_pipeline.lib.enrichment.companies import CompanyFact, ProviderAnswer

    confidence = 80 if provider == "gemini" else 70
    return ProviderAnswer("found", facts=tuple(CompanyFact(f, "?", confidence) for f in supplies))


def _estimated_lookup(identity: Identity, hits: set[str], provider: str) -> Lookup:
    """What a lookup would return for the estimate: typical facts, free when cached."""
    from leads_pipeline.lib.enrichment.engine import domain_answer

    if provider == "domain":
        return Lookup(domain_answer(identity), 0.0, cached=True)
    price = 0.0 if provider in hits else COMPANY_PROVIDERS[provider].credits
    return Lookup(_typical(provider, COMPANY_PROVIDERS[provider].supplies), price, provider in hits)


def estimate(
    conn: store.Connection, batch_id: str, sources: list[str], template: Template, *, overwrite: bool
) -> dict[str, Any]:
    """Credits and seconds the job should take, per source, from the batch's leads and the cache."""
    per_source: dict[str, dict[str, Any]] = {}
    leads = store.batch_size(conn, batch_id)
    for source in sources:
        if source == "company":
            per_source[source] = _company_estimate(conn, batch_id, template, overwrite=overwrite)
            continue
        column = SOURCE_FIELD[source]
        bought = BOUGHT_BEFORE.get(source)
        reused = (
            ""
            if bought is None
            else f""" AND (%(overwrite)s OR NOT EXISTS (SELECT 1 FROM lead_facts f WHERE f.lead_id = l.id
                                                      AND f.observed_at > now() - %(age)s AND ({bought})))"""
        )
        row = conn.execute(
            f"""SELECT count(*) FILTER (WHERE %(overwrite)s OR l.{column} IS NULL) AS n FROM leads l
                JOIN batch_members m ON m.lead_id = l.id WHERE m.batch_id = %(batch)s AND l.deleted_at IS NULL
                  AND {SEARCHABLE.get(source, "true")}{reused}""",
            {"overwrite": overwrite, "batch": batch_id, "age": timedelta(days=_cache_days(source)) if bought else None},
        ).fetchone()
        assert row is not None
        needing = int(row["n"])
        expected, worst = SOURCE_CREDITS_PER_LEAD[source]
        per_source[source] = {
            "leadsNeeding": needing,
            "estimatedCredits": needing * expected,
            "maxCredits": needing * worst,
            "estimatedTime": needing * CONTACT_SECONDS_PER_LEAD / CONCURRENCY,
            "paidCalls": dict.fromkeys(SOURCE_CALLS_PER_LEAD[source], needing),
        }
        if source == "email" and not overwrite:  # (overwriting counts every lead already)
            _add_stale_verdicts(conn, batch_id, per_source[source])
            _add_unverified(conn, batch_id, per_source[source])
        if source == "linkedin" and not overwrite:
            _add_profile_reads(conn, batch_id, per_source[source])
    # no lead may cost more than the template's max_credits_per_lead, whatever its sources would ask for
    ceiling = math.inf if template.max_credits_per_lead is None else template.max_credits_per_lead * leads
    return {
        "leads": leads,
        "estimatedCredits": round(min(ceiling, sum(s["estimatedCredits"] for s in per_source.values())), 4),
        "maxCredits": round(min(ceiling, sum(s["maxCredits"] for s in per_source.values())), 4),
        "estimatedTime": math.ceil(1 + sum(s["estimatedTime"] for s in per_source.values())),
        "sources": per_source,
        "template": template.name,
    }


def _add_stale_verdicts(conn: store.Connection, batch_id: str, email: dict[str, Any]) -> None:
    """Add to the email estimate the addresses the stage verifies again, paying the same verifier, because their
    verdict is older than the stage's ``cache_days`` (``staleVerdicts``): a lead with an address is not "missing"
    it, yet its stale verdict is bought again."""
    from leads_pipeline.lib.contacts.email_batch import EmailOptions  # (dnspython, smtplib): the email estimate only

    stale = store.stale_paid_verdicts(conn, batch_id, list(PAID_VERIFIERS), timedelta(days=EmailOptions.cache_days))
    _add_checks(email, "staleVerdicts", {PAID_VERIFIERS[method]: n for method, n in stale.items()})


def _add_unverified(conn: store.Connection, batch_id: str, email: dict[str, Any]) -> None:
    """Add to the email estimate, when the paid verifier answers every check (``answering_verifier``), the
    addresses it is asked about that are not stale verdicts (``unverifiedAddresses``: never verified, verified
    "unknown", or changed since): with SMTP probing off, the estimate of a list of imported addresses said 0
    credits for a run that bought a verdict on each."""
    from leads_pipeline.lib.contacts.email_batch import EmailOptions

    method = answering_verifier()
    if method is None:
        return
    age = timedelta(days=EmailOptions.cache_days)
    count = store.unverified_addresses(conn, batch_id, method, list(PAID_VERIFIERS), age)
    _add_checks(email, "unverifiedAddresses", {PAID_VERIFIERS[method]: count})


def answering_verifier() -> str | None:
    """The paid verifier that answers each of the email stage's checks: with SMTP probing off
    (``LEADS_SMTP_PROBING``), the one the stage's ``verifier: auto`` picks (a job's runs set no other), by the
    ``paid_verifier`` that ``leads verify`` asks, over the clients the environment configures now (no Dagster).
    None while mail hosts are probed (the paid verifier is asked only after an "unknown" probe, which no estimate
    can foresee) or when none is configured."""
    from leads_pipeline.lib.clients.smtp import PROBING_DEFAULT, PROBING_ENV, probing_on
    from leads_pipeline.lib.clients.verifier_clients import paid_verifier, verifier_clients_of_environment

    if probing_on(os.environ.get(PROBING_ENV) or PROBING_DEFAULT):
        return None
    return paid_verifier("auto", *verifier_clients_of_environment())[1]


def _add_profile_reads(conn: store.Connection, batch_id: str, linkedin: dict[str, Any]) -> None:
    """Add to the LinkedIn estimate the leads that have a URL but no fresh profile (``profileReads``): they miss
    no URL, yet the stage reads their profile, at its price."""
    from leads_pipeline.lib.contacts.linkedin_batch import LinkedInOptions

    count = store.profiles_to_read(conn, batch_id, timedelta(days=LinkedInOptions.cache_days))
    _add_checks(linkedin, "profileReads", {"apify_linkedin_profile": count})


def _add_checks(entry: dict[str, Any], key: str, calls: dict[PriceItem, int]) -> None:
    """Add paid checks of leads that miss nothing (``calls``: how many of each price item) to a source's
    estimate, their count under ``key``, and to its totals and ``paidCalls``."""
    count = sum(calls.values())
    credits = sum(n * price(item) for item, n in calls.items())
    for item, n in calls.items():
        entry["paidCalls"][item] = entry["paidCalls"].get(item, 0) + n
    entry[key] = count
    entry["leadsNeeding"] += count
    entry["estimatedCredits"] += credits
    entry["maxCredits"] += credits
    entry["estimatedTime"] += count * CONTACT_SECONDS_PER_LEAD / CONCURRENCY


def _company_estimate(conn: store.Connection, batch_id: str, template: Template, *, overwrite: bool) -> dict[str, Any]:
    """Walks the waterfall once per company as the run will, from the batch's leads read a page at a time (a
    list of 300,000 leads held whole took most of a gigabyte)."""
    from leads_pipeline.lib.enrichment.engine import plan_units

    units, orphans = plan_units(
        store.company_input_pages(conn, batch_id), template, overwrite, partial(store.lead_emails, conn)
    )
    expected = worst = seconds = 0.0
    lookups = cached = 0
    paid: dict[str, int] = {}
    answered = store.cached_lookups(conn, [u.identity.key for u in units if u.needed], template.providers())
    for unit in units:
        if not unit.needed:
            continue
        hits = {p for p in template.providers() if p == "domain" or (unit.identity.key, p) in answered}

        outcome = run_waterfall(
            template, set(unit.needed), partial(_estimated_lookup, unit.identity, hits), Budget(None)
        )
        for provider, result in outcome.answers:
            if provider == "domain":
                continue
            lookups += 1
            cached += result.cached
            expected += result.charged
            if result.charged:
                item = COMPANY_PROVIDERS[provider].price_item
                assert item is not None  # charged: a paid provider
                paid[item] = paid.get(item, 0) + 1
            seconds += 0 if result.cached else COMPANY_PROVIDERS[provider].seconds
        worst += sum(
            COMPANY_PROVIDERS[p].credits
            for p in template.providers()
            if p not in hits and template.affordable(p) and COMPANY_PROVIDERS[p].supplies & unit.needed
        )
    return {
        "leadsNeeding": sum(len(u.lead_ids) for u in units if u.needed),
        "companies": len(units),
        "leadsWithoutCompany": orphans,
        "lookups": lookups,
        "cacheHits": cached,
        "estimatedCredits": round(expected, 4),
        "maxCredits": round(worst, 4),
        "estimatedTime": seconds / CONCURRENCY,
        "paidCalls": paid,
    }


# --- results ------------------------------------------------------------------------------------------------


def launch_response(job: store.Job) -> dict[str, Any]:
    """The PRD's "Enrich Leads" response."""
    return {
        "jobId": job.id,
        "status": job.status,
        "leadsQueued": job.leads_queued,
        "estimatedCredits": job.estimated_credits,
        "estimatedTime": job.estimated_seconds,
        "maxCredits": job.max_credits,
        "sources": list(job.sources),
        "template": job.template,
        "priority": job.priority,
    }


def summary(conn: store.Connection, job_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The PRD's "Get Enrichment Results" shape, plus the ETA while running and per-source status."""
    job = store.get_job(conn, job_id)
    now = now or datetime.now(UTC)
    rows = store.progress_rows(conn, job_id)
    counts = store.result_counts(conn, job_id)
    total = job.leads_queued
    processed = sum(r["processed"] for r in rows) // max(1, len(rows)) if rows else 0
    processed = min(processed, total)
    enriched, failed = int(counts["enriched"]), int(counts["failed"])
    no_data = max(0, processed - enriched - failed)
    document: dict[str, Any] = {
        "jobId": job.id,
        "status": job.status,
        "progress": {
            "processed": processed,
            "total": total,
            "percentage": round(100.0 * processed / total, 1) if total else 100.0,
        },
        "results": {"enriched": enriched, "noDataFound": no_data, "failed": failed},
        "breakdown": {
            "email": {"found": int(counts["email_found"]), "verified": int(counts["email_verified"])},
            "phone": {"found": int(counts["phone_found"]), "mobile": int(counts["phone_mobile"])},
            "linkedin": {"found": int(counts["linkedin_found"])},
            "company": {"found": int(counts["company_found"])},
        },
        "creditsUsed": round(store.credits_used(conn, job_id), 4),
        "estimatedCredits": job.estimated_credits,
        "maxCredits": job.max_credits,
        "sources": [
            {
                "source": r["source"],
                "status": r["status"],
                "processed": r["processed"],
                "total": r["total"],
                "note": r["note"],
            }
            for r in rows
        ],
        "createdAt": job.created_at.isoformat(),
        "startedAt": job.started_at.isoformat() if job.started_at else None,
    }
    if job.status in ("queued", "processing"):
        document["eta"] = eta_seconds(job, processed, total, now)
    if job.completed_at is not None:
        document["completedAt"] = job.completed_at.isoformat()
    if job.failure:
        document["failure"] = job.failure
    return document


def eta_seconds(job: store.Job, processed: int, total: int, now: datetime) -> float:
    """Seconds left: the observed rate once leads are done, else the estimate minus the time already spent."""
    if job.started_at is None:
        return job.estimated_seconds
    elapsed = max(0.0, (now - job.started_at).total_seconds())
    if processed > 0:
        return round(elapsed / processed * (total - processed), 1)
    return round(max(0.0, job.estimated_seconds - elapsed), 1)
