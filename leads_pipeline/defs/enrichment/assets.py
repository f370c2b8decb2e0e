"""The enrichment stage: company profiles for the leads of a batch (contact discovery adds email/phone/LinkedIn)."""

import functools
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

import dagster as dg

from leads_pipeline.defs.config import RunConfig, out_of_range
from leads_pipeline.defs.enrichment.checks import CHECK_SPECS, budget_check, facts_check
from leads_pipeline.defs.executor import SPENDS_CREDITS, final_failure, retry_failed_leads, stops_on_interrupt
from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.defs.partitions import batches, no_batch_leads, registered_batch
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.gemini import GeminiResource
from leads_pipeline.lib.enrichment.engine import SOURCE, CompanyEnricher
from leads_pipeline.lib.enrichment.jobs import (
    MONTHLY_BUDGET_ENV,
    check_max_credits,
    estimate,
    job_budget,
    launch_refusal,
    monthly_budget,
)
from leads_pipeline.lib.enrichment.providers import SOURCE_ASSETS
from leads_pipeline.lib.enrichment.templates import load_template
from leads_pipeline.lib.errors import ConfigurationError, PermanentError
from leads_pipeline.lib.store import enrichment as store
from leads_pipeline.lib.store import liveness
from leads_pipeline.lib.store.batches import batch_exists
from leads_pipeline.lib.store.db import connect

DEFAULT_TEMPLATE = "standard"

P = ParamSpec("P")
R = TypeVar("R")


PACED_PROVIDERS = ("gemini", "apify_search")
"""The providers ``requests_per_second`` paces (``CompanyEnricher``)."""


class CompanyProfilesConfig(RunConfig):
    """Run settings; unset values come from the job (``leads enrich``) or, for a batch without one, the defaults."""

    overwrite: bool = False
    """Look every company up again and replace its facts (else only what is missing is looked up)."""
    template: str | None = None
    """The enrichment template (``leads templates ls``) whose waterfall and caps the lookups follow."""
    max_credits: float | None = None
    """The most credits the job may spend over all its stages; unset: the job's own limit, or none."""
    cache_ttl_days: int = 90
    """How old a stored company fact may be and still be reused instead of paid for again."""
    concurrency: int = 8
    """Companies looked up at once."""
    requests_per_second: dict[str, float] = {}  # noqa: RUF012 - pydantic copies defaults
    """Most requests per second per provider: ``gemini`` (not paced when not given), ``apify_search`` (this run's
    rate of the Apify token's bucket, shared with the contact stages; default APIFY_REQUESTS_PER_SECOND)."""
    user: str = "dagster"
    """Who the enrichment job a UI launch creates is recorded as created by."""

    def checked(self) -> "CompanyProfilesConfig":
        """The settings, refused in one line when they bound nothing: a negative ``max_credits`` failed the job's
        table check (retried, then "Exceeded max_retries of 3"), and a negative ``cache_ttl_days`` took every
        stored company fact for stale, paying for each company again."""
        check_max_credits(self.max_credits, "max_credits")
        for problem in (
            out_of_range("cache_ttl_days", self.cache_ttl_days, 0, unit="of days"),
            out_of_range("concurrency", self.concurrency, 1, unit="of companies"),  # was taken as 1 without a word
        ):
            if problem is not None:
                raise ConfigurationError(problem)
        for name, rate in self.requests_per_second.items():  # a misspelt name paced nothing, without a word
            if name not in PACED_PROVIDERS:
                raise ConfigurationError(
                    f"requests_per_second: unknown provider {name!r}; expected {' or '.join(PACED_PROVIDERS)}"
                )
            if not (math.isfinite(rate) and rate > 0):
                raise ConfigurationError(f"requests_per_second.{name} must be a number > 0; got {rate}")
        return self


def run_sources(context: dg.AssetExecutionContext) -> list[str]:
    """The enrichment sources (``leads enrich --sources`` names) whose assets this run materializes: a UI launch
    of email_contacts with company_profiles is one job of both, not a "company" job doing email work unrecorded."""
    selected = {key.to_user_string() for key in context.job_def.asset_layer.selected_asset_keys}
    return [source for source, asset_key in SOURCE_ASSETS.items() if asset_key in selected]


_STAND_DOWN_REASON = "runs in a `leads` process (`leads jobs resume`)"
"""Why a run Dagster launched for a job stands down (its cancel message, its error): not the flag ``run_in_process``."""


def ensure_job(context: dg.AssetExecutionContext, conn: store.Connection, *, overwrite: bool) -> store.Job:
    """The batch's enrichment job. A batch launched from the UI has none yet: any source asset the run
    materializes (``company_profiles`` or a contact asset alone) creates it, with the run's sources and the settings
    of the run's ``company_profiles`` config (the defaults when the run has none; ``overwrite`` is the asset's
    own), so every run that spends credits is a job ``leads jobs`` shows, with its --max-credits and template cap.
    A launch ``launch_refusal`` refuses (the month's budget used up) fails at once with its line, and no job.
    A run Dagster launched for a job a ``leads`` process runs ends canceled (``store.run_by_dagster``), not
    failed: the run failure sensor would settle the job failed while it runs."""
    batch_id = context.partition_key
    job = store.find_job(conn, batch_id)
    if job is not None:
        # a run of `leads` (tagged cli) runs in the process holding the job's lock; one Dagster launched stands down
        # while such a process runs the job (`leads jobs resume` of a job its queued run was left to run)
        if context.run.tags.get("leads/source") != "cli" and not store.run_by_dagster(conn, job.id):
            context.instance.report_run_canceling(context.run, message=f"{_STAND_DOWN_REASON}: this run stands down")
            raise PermanentError(f"enrichment job {job.id} {_STAND_DOWN_REASON}: this Dagster run stood down")
        return job
    if not batch_exists(conn, batch_id):
        raise PermanentError(no_batch_leads(batch_id, "enrich", "import a file, or select leads with `leads enrich`"))
    ops = context.run.run_config.get("ops")
    company: dict[str, Any] = ops.get(SOURCE_ASSETS[SOURCE], {}) if isinstance(ops, dict) else {}
    settings = CompanyProfilesConfig(**company.get("config", {})).checked()
    sources = run_sources(context)
    template = settings.template or DEFAULT_TEMPLATE
    plan = estimate(conn, batch_id, sources, load_template(template), overwrite=overwrite)
    refusal = launch_refusal(conn, plan)
    if refusal is not None:  # as `leads enrich` refuses it: the step fails with its line before any lookup
        raise PermanentError(refusal)
    return store.create_job(
        conn,
        batch_id,
        sources=sources,
        template=template,
        overwrite=overwrite,
        priority="normal",
        max_credits=settings.max_credits,
        estimate=plan,
        leads_queued=plan["leads"],
        notify_url=None,
        created_by=settings.user,
    )


def batch_lists(conn: store.Connection, batch_id: str) -> list[tuple[int, str]]:
    """The lists the batch's leads are in, each with the key of its paid-stage lock (``one_run_at_a_time``), in
    the order of the locks themselves (the keys' hashes): every run takes them in that one order, so two runs each
    waiting for a list the other holds cannot happen, even for two keys of one hash."""
    rows = conn.execute(
        "SELECT list_id, key FROM (SELECT DISTINCT l.list_id, 'list ' || l.list_id AS key FROM batch_members b"
        " JOIN leads l ON l.id = b.lead_id WHERE b.batch_id = %s) k ORDER BY hashtext(key), list_id",
        (batch_id,),
    )
    return [(int(r["list_id"]), str(r["key"])) for r in rows]


def one_run_at_a_time(
    source: str,
) -> Callable[
    [Callable[Concatenate[dg.AssetExecutionContext, P], R]], Callable[Concatenate[dg.AssetExecutionContext, P], R]
]:
    """A batch's paid stages (``source`` is this one) that one run works on at a time. Dagster starts every run it
    is given: a backfill over a partition that a launch from the UI, the enrich-after-import sensor or another
    backfill also ran had both runs read the batch's leads as not done at once, and each looked them up and paid
    (credits counted twice, two facts per answer); two stages of one job in two runs each read what the job had
    spent, and together passed its --max-credits and per-lead cap (within a run, ``SPENDS_CREDITS`` runs them one
    after another for that reason). The run that comes second now waits for the first's stage to end, its log
    naming that run, then finds the leads done and pays nothing again. The lock (``liveness.ENRICHMENT_STAGE``)
    is held on a connection of its own while the stage runs, named after the run (``application_name``); the
    server drops it with a killed run. A run waits holding no other stage's lock (its paid stages run one after
    another), so waits cannot form a cycle. Goes under ``stops_on_interrupt``: terminating a waiting run ends its
    wait. The asset's resource ``database`` is where the lock is taken.

    With a monthly budget (``LEADS_MONTHLY_CREDITS``) one paid stage runs at a time, whatever its batch: each
    stage reads what is left of the month when it starts and reserves its calls in its own process, so the runs
    of a backfill (four at once) each spent the whole rest and together passed the budget.

    The stage then also takes a lock per list its batch's leads are in (``batch_lists``): two ``leads enrich`` of
    the same leads at once (overlapping cron jobs) are two batches, whose locks differed, and each paid for what
    neither found stored (500 leads of 50 companies: 76 credits, not 50). The second now waits for the first's
    stage to end, then reads what it bought (the stages read stored answers per lead or company as they go, all
    after the locks are taken) and pays nothing again. Batches of one list take turns at their paid stages. The
    list locks are taken in one order (``batch_lists``), after the batch's or month's, so waits cannot form a cycle."""

    def decorate(
        compute: Callable[Concatenate[dg.AssetExecutionContext, P], R],
    ) -> Callable[Concatenate[dg.AssetExecutionContext, P], R]:
        @functools.wraps(compute)
        def compute_alone(context: dg.AssetExecutionContext, *args: P.args, **kwargs: P.kwargs) -> R:
            database = kwargs["database"]
            assert isinstance(database, LeadsDatabase)
            batch_id = context.partition_key
            try:
                month = monthly_budget() is not None
            except PermanentError as exc:  # a LEADS_MONTHLY_CREDITS that is no number: retrying cannot help
                raise final_failure(str(exc)) from exc
            key = MONTHLY_BUDGET_ENV if month else batch_id
            with connect(database.database_url, autocommit=True) as keeper:
                keeper.execute("SELECT set_config('application_name', %s, false)", (f"dagster run {context.run_id}",))

                def take(key: str, why: str) -> None:
                    if not liveness.claim(keeper, liveness.ENRICHMENT_STAGE, key):
                        other = liveness.holder(keeper, liveness.ENRICHMENT_STAGE, key) or "another run"
                        context.log.info(f"{source}: {other} {why}")
                        liveness.wait_for(keeper, liveness.ENRICHMENT_STAGE, key)
                        context.log.info(f"{source}: {other} is done; going on with batch {batch_id}")

                take(
                    key,
                    f"is running a paid stage; waiting for it to end, as {MONTHLY_BUDGET_ENV} is set (one paid"
                    " stage at a time, so that runs at once do not together spend past the month's budget)"
                    if month
                    else f"is working on batch {batch_id}; waiting for it to end, so that its leads are not"
                    " looked up and paid for twice",
                )
                for list_id, list_key in batch_lists(keeper, batch_id):
                    take(
                        list_key,
                        f"is working on list {list_id}, which leads of batch {batch_id} are in; waiting for it to"
                        " end, so that they are not looked up and paid for twice",
                    )
                return compute(context, *args, **kwargs)

        return compute_alone

    return decorate


@dg.asset(
    partitions_def=batches,
    group_name="enrichment",
    kinds={"postgres", "gemini", "apify"},
    deps=[batch_leads],
    pool="gemini",
    op_tags=SPENDS_CREDITS,
    check_specs=CHECK_SPECS,
    retry_policy=dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
@stops_on_interrupt
@one_run_at_a_time(SOURCE)
def company_profiles(
    context: dg.AssetExecutionContext,
    config: CompanyProfilesConfig,
    database: LeadsDatabase,
    gemini: GeminiResource,
    apify: ApifyResource,
) -> dg.MaterializeResult:
    """Company profiles for the batch's leads: website, industry (fixed taxonomy), size, revenue, technologies,
    social profiles and HQ, looked up once per company domain through the job's template waterfall (the lead's
    own domain, Gemini research grounded in Google Search, Apify web search), cached with a TTL and shared by all
    the company's leads. Every value is a fact with its source, confidence, cited pages and cost; the job never
    spends past its --max-credits or the account's monthly budget; a rerun pays nothing twice."""
    batch_id = registered_batch(context)
    try:
        config.checked()
        with database.connection() as conn:
            job = ensure_job(context, conn, overwrite=config.overwrite)
            max_credits = config.max_credits if config.max_credits is not None else job.max_credits
            job = replace(job, max_credits=max_credits)
            template = load_template(config.template or job.template)
            budget = job_budget(conn, job, exclude_prefix=store.COMPANY_SOURCE_PREFIX, template=template)
    except PermanentError as exc:
        raise final_failure(str(exc)) from exc
    enricher = CompanyEnricher(
        database.database_url,
        batch_id,
        template,
        overwrite=config.overwrite or job.overwrite,
        budget=budget,
        gemini=gemini,
        apify=apify,
        ttl=timedelta(days=config.cache_ttl_days),
        concurrency=config.concurrency,
        requests_per_second=config.requests_per_second,
        log=context.log.warning,
    )
    stats = enricher.run()
    # every company already answered comes from the cache on the retry, so only the failed ones are asked again
    retry_failed_leads(context, stats.transient_failures, "company lookups")
    with database.connection() as conn:
        note = budget.note("company lookup")
        if note is not None:
            store.finish_source(conn, batch_id, SOURCE, "skipped", note)
        else:
            store.finish_source(conn, batch_id, SOURCE, "completed")
        checks = [facts_check(conn, batch_id), budget_check(conn, job)]
        used = store.credits_used(conn, batch_id)
    asked = sorted(set(stats.calls) | set(stats.cache_hits))
    # a table of no row (a free template's run: its values are the leads' own) read as a table not drawn
    lookups = (
        "\n".join(
            ["| provider | calls | cache hits |", "|---|---|---|"]
            + [f"| {p} | {stats.calls[p]} | {stats.cache_hits[p]} |" for p in asked]
        )
        if asked
        else "none: no provider was asked (the values came from the leads' own data)"
    )
    return dg.MaterializeResult(
        metadata={
            "template": dg.MetadataValue.text(template.name),
            "leads": dg.MetadataValue.int(stats.leads),
            "companies": dg.MetadataValue.int(stats.companies),
            "leads_without_company": dg.MetadataValue.int(stats.no_identity),
            "lookups": dg.MetadataValue.md(lookups),
            "facts_written": dg.MetadataValue.int(stats.facts),
            "rejected_values": dg.MetadataValue.int(stats.rejected),
            "failed_leads": dg.MetadataValue.int(stats.failed_leads),
            "credits_this_source": dg.MetadataValue.float(round(stats.credits, 4)),
            "credits_used_by_job": dg.MetadataValue.float(round(used, 4)),
            "estimated_credits": dg.MetadataValue.float(job.estimated_credits),
            "max_credits": dg.MetadataValue.float(max_credits)
            if max_credits is not None
            else dg.MetadataValue.text("unlimited"),  # as the check job_within_max_credits says
            "requests_per_second": dg.MetadataValue.json(enricher.rates()),
            "skipped": dg.MetadataValue.md("\n".join(f"- {k} ({n}x)" for k, n in stats.skipped.items()) or "none"),
        },
        check_results=checks,
    )
