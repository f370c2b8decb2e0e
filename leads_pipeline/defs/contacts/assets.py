"""The contact stages of a batch: email (discover + verify), phone (type, validate, direct dials), LinkedIn.

Each stage's run config is its lib options (``EmailOptions`` and ``VerifierSettings``, ``PhoneOptions``,
``LinkedInOptions``) as Dagster sees them: the Config classes take their defaults from those dataclasses, and
``options_from`` builds the options from a config by field name, so a default or a new option lives in one place.
"""

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import dagster as dg

from leads_pipeline.defs.config import RunConfig, out_of_range
from leads_pipeline.defs.contacts.checks import (
    EMAIL_CHECK_SPECS,
    LINKEDIN_CHECK_SPECS,
    PHONE_CHECK_SPECS,
    dnc_fresh_check,
    email_mx_check,
    linkedin_url_check,
    phone_e164_check,
)
from leads_pipeline.defs.enrichment.assets import ensure_job, one_run_at_a_time
from leads_pipeline.defs.executor import (
    SPENDS_CREDITS,
    final_failure,
    retries_left,
    retry_failed_leads,
    stops_on_interrupt,
)
from leads_pipeline.defs.partitions import batches, registered_batch
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.mail import MailCheckResource
from leads_pipeline.lib.clients.smtp import PROBING_ENV
from leads_pipeline.lib.clients.twilio import TwilioLookupResource
from leads_pipeline.lib.clients.verifier_clients import paid_verifier
from leads_pipeline.lib.clients.verifiers import NeverBounceResource, ZeroBounceResource
from leads_pipeline.lib.contacts.email_batch import PROBING_BLOCKED, EmailOptions, EmailStage, EmailStats
from leads_pipeline.lib.contacts.failures import Failures
from leads_pipeline.lib.contacts.linkedin_batch import LinkedInOptions, LinkedInStage
from leads_pipeline.lib.contacts.phone_batch import PhoneOptions, PhoneStage
from leads_pipeline.lib.contacts.verifier import EmailVerifier, VerifierSettings
from leads_pipeline.lib.countries import configured_default_region
from leads_pipeline.lib.credits import Budget
from leads_pipeline.lib.enrichment.jobs import job_budget
from leads_pipeline.lib.enrichment.templates import load_template
from leads_pipeline.lib.errors import PermanentError
from leads_pipeline.lib.ratelimit import Pacer
from leads_pipeline.lib.runtime import leads_home
from leads_pipeline.lib.store import enrichment as jobs_store
from leads_pipeline.lib.store.contacts import batch_cost

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

Options = TypeVar("Options", bound="DataclassInstance")


SETTING_RANGES: dict[str, tuple[float, float | None]] = {
    "chunk_size": (1, None),
    "workers": (1, None),
    "per_host": (1, None),
    "queries_per_run": (1, None),
    "profiles_per_run": (1, None),
    "max_concurrent_runs": (1, None),
    "max_candidates": (0, None),
    "cache_days": (0, None),
    "greylist_wait_s": (0, None),
    "threshold": (0, 1),
}
"""The values a contact stage's numeric run config setting may take (lowest, highest or None). The launchpad takes
any number: ``chunk_size: 0`` failed every stage after two retries with Python's "range() arg 3 must not be
zero"; a negative one ran over no lead."""


def _check_setting(name: str, value: Any) -> None:
    if name in SETTING_RANGES and isinstance(value, int | float):
        problem = out_of_range(name, value, *SETTING_RANGES[name])
        if problem is not None:
            raise final_failure(problem)


def options_from(config: dg.Config, options: type[Options], **overrides: Any) -> Options:
    """``options`` with every field the run config also has taken from it, by name, then ``overrides``; a setting
    out of its range (``SETTING_RANGES``) fails the step in one line, not retried."""
    names = {f.name for f in dataclasses.fields(options)}
    values = {name: getattr(config, name) for name in type(config).model_fields if name in names}
    for name, value in values.items():
        _check_setting(name, value)
    return options(**{**values, **overrides})


class EmailContactsConfig(RunConfig):
    """How the email stage runs. overwrite=False keeps verified emails and fills only missing ones."""

    overwrite: bool = EmailOptions.overwrite
    """Verify every lead's email again and replace it with a better verified one (else only missing ones are filled)."""
    discover: bool = EmailOptions.discover
    """Guess addresses from the domain's learned pattern for leads without an email."""
    max_candidates: int = EmailOptions.max_candidates
    """How many guessed addresses are verified per lead, most likely first."""
    people_search: bool = EmailOptions.people_search
    """Ask the people-search actor (Apify, paid) for a lead whose guesses found nothing deliverable."""
    verifier: Literal["auto", "zerobounce", "neverbounce", "none"] = "auto"
    """The paid verifier asked when SMTP probing gives no answer or is off: ``auto`` is the first configured one."""
    workers: int = VerifierSettings.workers
    """Probes or paid verifications at once."""
    per_host: int = VerifierSettings.per_host
    """Probes at once on one mail host."""
    greylist_wait_s: float = VerifierSettings.greylist_wait_s
    """The longest greylisting delay (seconds) waited for before probing an address again within the run."""
    chunk_size: int = EmailOptions.chunk_size
    """Leads read and written per chunk (each chunk is committed when done)."""
    cache_days: int = EmailOptions.cache_days
    """How old a stored paid answer may be and still be reused instead of paid for again."""


class _Paceable(Protocol):
    def paced(self, database_url: str) -> AbstractContextManager[Pacer | None]: ...


@contextmanager
def _paced(database: LeadsDatabase, *providers: _Paceable) -> Iterator[None]:
    """The stage's provider requests paced by their keys' buckets in the database (``requests_per_second`` of each
    resource): a stage's workers and every run at once share a key's rate instead of each retrying into 429s."""
    with ExitStack() as stack:
        for provider in providers:
            stack.enter_context(provider.paced(database.database_url))
        yield


def _budget(context: dg.AssetExecutionContext, database: LeadsDatabase, overwrite: bool) -> Budget:
    """What the stage may spend: its enrichment job's --max-credits left, the month's rest, and per lead the job
    template's max_credits_per_lead less what the job's earlier stages charged the lead (``job_budget``). A batch
    launched from the UI without a job gets one (``ensure_job``), as when ``company_profiles`` is launched."""
    try:
        with database.connection() as conn:
            job = ensure_job(context, conn, overwrite=overwrite)
            return job_budget(conn, job, template=load_template(job.template))
    except PermanentError as exc:
        raise final_failure(str(exc)) from exc


def _progress(database: LeadsDatabase, batch_id: str, source: str) -> Callable[[int], None]:
    """The source begins on its job (``processing``, none of the batch's leads done) and the function the stage
    tells each chunk's leads to once written: `leads jobs show` read a running contact stage as queued, 0 leads
    done, while it spent credits, until it ended."""
    with database.connection() as conn:
        jobs_store.start_source(conn, batch_id, source, jobs_store.batch_size(conn, batch_id))

    def advance(leads: int) -> None:
        with database.connection() as conn:
            jobs_store.advance_source(conn, batch_id, source, leads)

    return advance


def _settle_budget(conn: jobs_store.Connection, batch_id: str, source: str, budget: Budget) -> None:
    """A stage the budget stopped (the job's limit, or leads at their cap) says so on its job: the source ends
    "skipped" with the reasons and counts, the job "partial"; any other ends "completed", as company_profiles
    does, not "processing" until the job's last stage is done."""
    note = budget.note()
    jobs_store.finish_source(conn, batch_id, source, "completed" if note is None else "skipped", note)


def _record_failures(
    context: dg.AssetExecutionContext,
    conn: jobs_store.Connection,
    batch_id: str,
    source: str,
    failures: Failures,
    *,
    retried: bool = True,
) -> None:
    """Leads a provider failed for are failed on the job (`leads jobs show` counts them apart from "no data"), its
    source says how many and why, and a warning names each provider and error class, as company_profiles' are.
    The step is then retried for them (``retry_failed_leads``; not when ``retried`` is False), and each attempt
    records only the leads still failed; after the last one the user runs the stage again. The step still succeeds
    (so does company_profiles'): what was answered is written."""
    jobs_store.clear_failures(conn, batch_id, source)  # a failed lead is never marked done: this run asked again
    by_reason: dict[str, list[int]] = {}
    for lead_id, reason in failures.reasons.items():
        by_reason.setdefault(reason, []).append(lead_id)
    for reason, lead_ids in by_reason.items():
        jobs_store.record_failures(conn, batch_id, source, lead_ids, reason)
    if failures:
        causes = ", ".join(f"{cause}: {n}" for cause, n in sorted(failures.by_cause.items()))
        then = "asking them again" if retried and retries_left(context) else "run the stage again to retry them"
        context.log.warning(f"{source}: {len(failures):,} leads failed ({causes}); {then}")
        jobs_store.note_source(conn, batch_id, source, f"{len(failures):,}{jobs_store.FAILED_NOTE}{causes}")


class StageCost:
    """What a stage's run spent: the ledger's charges of the stage's fields for the batch, read when the run
    starts (inside ``one_run_at_a_time``, so no other run of the stage on the batch adds any meanwhile) and
    again at its end. The metadata names them as company_profiles does: ``credits_this_source`` is this run's
    spend (summing it over the asset's materializations counts each credit once), ``credits_used_by_job`` the
    batch job's total (every stage), and ``credits_source_total`` the stage's total on the batch so far."""

    def __init__(self, database: LeadsDatabase, batch_id: str, fields: list[str], stage: str | None = None) -> None:
        self.batch_id, self.fields, self.stage = batch_id, fields, stage
        with database.connection() as conn:
            self.before = self._total(conn)

    def _total(self, conn: jobs_store.Connection) -> float:
        return batch_cost(conn, self.batch_id, self.fields, self.stage)

    def metadata(self, conn: jobs_store.Connection) -> dict[str, dg.MetadataValue]:
        total = self._total(conn)
        return {
            "credits_this_source": dg.MetadataValue.float(round(total - self.before, 4)),
            "credits_source_total": dg.MetadataValue.float(round(total, 4)),
            "credits_used_by_job": dg.MetadataValue.float(round(jobs_store.credits_used(conn, self.batch_id), 4)),
        }


def _counts(counter: dict[str, int]) -> dg.MetadataValue:
    return dg.MetadataValue.json(dict(sorted(counter.items())))


def _source_state(configured: bool, wanted: bool, env_var: str) -> str:
    """How a source took part, for the metadata: a source left out says why."""
    if not wanted:
        return "off (config)"
    return "on" if configured else f"skipped: {env_var} is not set"


def _email_metadata(stats: EmailStats, method: str, people_search: str) -> dict[str, dg.MetadataValue]:
    risky = stats.discovery["catch_all"] + stats.discovery["unknown"]
    return {
        "leads": dg.MetadataValue.int(stats.leads),
        "already_done": dg.MetadataValue.int(stats.skipped_done),
        "checked": dg.MetadataValue.int(sum(stats.checked.values())),
        "verified": dg.MetadataValue.int(stats.verified),
        "found": dg.MetadataValue.int(stats.found),
        "risky": dg.MetadataValue.int(risky),
        "not_found": dg.MetadataValue.int(stats.discovery["not_found"]),
        "leads_updated": dg.MetadataValue.int(stats.leads_updated),
        "checked_by_status": _counts(stats.checked),
        "discovered_by_status": _counts(stats.discovery),
        "found_by_source": _counts(stats.found_by_source),
        "catch_all_domains": dg.MetadataValue.int(len(stats.catch_all_domains)),
        "mailbox_check": dg.MetadataValue.text(method),
        "people_search": dg.MetadataValue.text(people_search),
    }


@dg.asset(
    partitions_def=batches,
    group_name="contacts",
    kinds={"postgres", "smtp"},
    deps=["batch_leads"],
    check_specs=EMAIL_CHECK_SPECS,
    retry_policy=RETRY,
    pool="email_verification",
    op_tags=SPENDS_CREDITS,
)
@stops_on_interrupt
@one_run_at_a_time("email")
def email_contacts(
    context: dg.AssetExecutionContext,
    config: EmailContactsConfig,
    database: LeadsDatabase,
    mail: MailCheckResource,
    zerobounce: ZeroBounceResource,
    neverbounce: NeverBounceResource,
    apify: ApifyResource,
) -> dg.MaterializeResult:
    """Emails of the batch's leads: existing addresses verified (syntax, MX, SMTP probe with catch-all
    detection, or a paid verifier when probing is off) and missing ones discovered from each domain's learned
    address pattern (the people-search actor as a fallback). Every verdict is a lead fact with its source,
    confidence, cost and each provider's own answer; verified addresses fill the lead's email."""
    paid, paid_name = paid_verifier(config.verifier, zerobounce, neverbounce)
    resolver = mail.resolver()
    settings = options_from(config, VerifierSettings, probing=mail.probing)
    verifier = EmailVerifier(resolver, mail.prober(resolver), paid, paid_name, settings=settings)
    options = options_from(config, EmailOptions)
    batch_id = registered_batch(context)
    budget = _budget(context, database, config.overwrite)
    cost = StageCost(database, batch_id, ["email", "email_status"], "email")
    with _paced(database, zerobounce, neverbounce, apify):
        progress = _progress(database, batch_id, "email")
        stage = EmailStage(
            database.database_url, batch_id, verifier, apify, options, context.log.info, budget, progress
        )
        stats = stage.run()
    blocked = stats.failures.by_cause[PROBING_BLOCKED]
    with database.connection() as conn:
        credits = cost.metadata(conn)
        check = email_mx_check(conn, batch_id)
        _record_failures(context, conn, batch_id, "email", stats.failures, retried=len(stats.failures) > blocked)
        _settle_budget(conn, batch_id, "email", budget)
    if blocked and verifier.prober is not None:
        context.log.warning(
            f"email: SMTP probing looks blocked: none of the {verifier.blocked_hosts:,} mail hosts probed took a"
            f" connection on port {verifier.prober.port} (refused or timed out), which points at this network"
            f" blocking outgoing port 25 (most clouds do) or the mail servers being down; {blocked:,} leads are"
            f" counted failed. Set {PROBING_ENV}=off to verify with the paid verifier or DNS only"
        )
    # a blocked port is not a blip: retrying would wait out the same refusals or timeouts again
    retry_failed_leads(context, len(stats.failures) - blocked, "email: leads")
    people_search = _source_state(apify.is_configured, config.people_search, ApifyResource.ENV_VAR)
    metadata = _email_metadata(stats, verifier.method, people_search) | credits
    metadata["over_budget"] = dg.MetadataValue.int(stats.over_budget)
    metadata["failed_leads"] = dg.MetadataValue.int(len(stats.failures))
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


class PhoneContactsConfig(RunConfig):
    """How the phone stage runs. overwrite=False keeps the leads' numbers and fills only missing ones."""

    overwrite: bool = PhoneOptions.overwrite
    """Check every lead's numbers again and replace them with what is found (else only missing ones are filled)."""
    default_region: str | None = None
    """The country (ISO code) a number without a country code is read in when its lead has no country; unset,
    ``LEADS_DEFAULT_REGION``, else US."""
    twilio: Literal["ambiguous", "always", "never"] = PhoneOptions.twilio
    """When Twilio Lookup (paid) is asked for the line type: for numbers that cannot be typed offline, all, never."""
    direct_dials: bool = PhoneOptions.direct_dials
    """Ask the people-search actor (Apify, paid) for a number for leads without one."""
    workers: int = PhoneOptions.workers
    """Twilio lookups and people searches at once."""
    chunk_size: int = PhoneOptions.chunk_size
    """Leads read and written per chunk (each chunk is committed when done)."""
    cache_days: int = PhoneOptions.cache_days
    """How old a stored paid answer may be and still be reused instead of paid for again."""


def phone_options(config: PhoneContactsConfig) -> PhoneOptions:
    """The phone stage's options: a run launched without ``default_region`` (from the UI, a schedule or a job)
    reads national numbers in ``LEADS_DEFAULT_REGION``, as the imports do, rather than always in the US."""
    region = configured_default_region(config.default_region)
    return options_from(config, PhoneOptions, default_region=region)


@dg.asset(
    partitions_def=batches,
    group_name="contacts",
    kinds={"postgres", "twilio"},
    deps=["batch_leads"],
    check_specs=PHONE_CHECK_SPECS,
    retry_policy=RETRY,
    pool="phone_lookup",
    op_tags=SPENDS_CREDITS,
)
@stops_on_interrupt
@one_run_at_a_time("phone")
def phone_contacts(
    context: dg.AssetExecutionContext,
    config: PhoneContactsConfig,
    database: LeadsDatabase,
    twilio: TwilioLookupResource,
    apify: ApifyResource,
) -> dg.MaterializeResult:
    """Phones of the batch's leads: parsed with the lead's country, E.164 with extensions, validated and typed
    (mobile, landline, VoIP, toll-free...) offline; Twilio Lookup settles mobile vs landline where the numbering
    plan cannot (US/CA). Leads without a number get direct dials from the people-search actor. Mobiles fill
    the lead's mobile_phone."""
    options = phone_options(config)
    batch_id = registered_batch(context)
    budget = _budget(context, database, config.overwrite)
    cost = StageCost(database, batch_id, ["phone", "mobile_phone", "phone_line_type"], "phone")
    with _paced(database, twilio, apify):
        progress = _progress(database, batch_id, "phone")
        stats = PhoneStage(
            database.database_url, batch_id, twilio, apify, options, context.log.info, budget, progress
        ).run()
    with database.connection() as conn:
        credits = cost.metadata(conn)
        checks = [phone_e164_check(conn, batch_id), dnc_fresh_check(stats.dnc_snapshot)]
        _record_failures(context, conn, batch_id, "phone", stats.failures)
        _settle_budget(conn, batch_id, "phone", budget)
    retry_failed_leads(context, len(stats.failures), "phone: leads")
    metadata = {
        "leads": dg.MetadataValue.int(stats.leads),
        "already_done": dg.MetadataValue.int(stats.skipped_done),
        "checked": dg.MetadataValue.int(stats.checked),
        "valid": dg.MetadataValue.int(stats.valid),
        "verified": dg.MetadataValue.int(stats.valid),
        "found": dg.MetadataValue.int(stats.found),
        "searched": dg.MetadataValue.int(stats.searched),
        "mobile": dg.MetadataValue.int(stats.mobile),
        "line_types": _counts(stats.line_types),
        "twilio_lookups": dg.MetadataValue.int(stats.twilio_lookups),
        "failed_leads": dg.MetadataValue.int(len(stats.failures)),
        "twilio": dg.MetadataValue.text(
            _source_state(twilio.is_configured, config.twilio != "never", TwilioLookupResource.SID_ENV_VAR)
        ),
        "direct_dials": dg.MetadataValue.text(
            _source_state(apify.is_configured, config.direct_dials, ApifyResource.ENV_VAR)
        ),
        "on_dnc_list": dg.MetadataValue.int(stats.dnc),
        "dnc_snapshot": dg.MetadataValue.text(stats.dnc_snapshot or "none loaded"),
        "leads_updated": dg.MetadataValue.int(stats.leads_updated),
        "over_budget": dg.MetadataValue.int(stats.over_budget),
    } | credits
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


class LinkedInProfilesConfig(RunConfig):
    """How the LinkedIn stage runs. overwrite=False keeps the leads' LinkedIn URLs and fills only missing ones."""

    overwrite: bool = LinkedInOptions.overwrite
    """Search every lead again and replace its LinkedIn URL and profile (else only missing ones are filled)."""
    discover: bool = LinkedInOptions.discover
    """Search for the profile URL of leads without one (Google-search actor)."""
    extract: bool = LinkedInOptions.extract
    """Read the profiles (headline, title, company, location, experience) with the profile-scraper actor."""
    threshold: float = LinkedInOptions.threshold
    """The lowest match score (0 to 1, on name, company and title) a search result is accepted with."""
    queries_per_run: int = LinkedInOptions.queries_per_run
    """Searches per Google-search actor run."""
    profiles_per_run: int = LinkedInOptions.profiles_per_run
    """Profiles per profile-scraper actor run."""
    max_concurrent_runs: int = LinkedInOptions.max_concurrent_runs
    """Apify actor runs at once."""
    download_photos: bool = LinkedInOptions.download_photos
    """Store each profile's photo (images only, at most 5 MiB)."""
    media_dir: str | None = None
    """Where photos go; None means the leads home's ``media`` folder."""
    chunk_size: int = LinkedInOptions.chunk_size
    """Leads read and written per chunk (each chunk is committed when done)."""
    cache_days: int = LinkedInOptions.cache_days
    """How old a stored paid answer may be and still be reused instead of paid for again."""


@dg.asset(
    partitions_def=batches,
    group_name="contacts",
    kinds={"postgres", "apify"},
    deps=["batch_leads"],
    check_specs=LINKEDIN_CHECK_SPECS,
    retry_policy=RETRY,
    pool="apify",
    op_tags=SPENDS_CREDITS,
)
@stops_on_interrupt
@one_run_at_a_time("linkedin")
def linkedin_profiles(
    context: dg.AssetExecutionContext,
    config: LinkedInProfilesConfig,
    database: LeadsDatabase,
    apify: ApifyResource,
) -> dg.MaterializeResult:
    """LinkedIn profiles of the batch's leads: URLs found through the Google-search actor
    ("site:linkedin.com/in first last company"), each candidate scored on name, company and title and accepted
    above a threshold; profiles read by the scraper actor (headline, title, company, location, experience,
    connection degree) and photos stored under the media folder by hash. Actor runs are batched."""
    batch_id = registered_batch(context)
    if not apify.is_configured:  # a source without credentials is skipped with the reason, never a crash
        reason = f"skipped: LinkedIn discovery needs Apify; set {ApifyResource.ENV_VAR}"
        context.log.warning(reason)
        with database.connection() as conn:
            check = linkedin_url_check(conn, batch_id)
        return dg.MaterializeResult(
            metadata={"found": dg.MetadataValue.int(0), "skipped": dg.MetadataValue.text(reason)},
            check_results=[check],
        )
    media_dir = Path(config.media_dir) if config.media_dir else leads_home() / "media"
    options = options_from(config, LinkedInOptions, media_dir=media_dir)
    budget = _budget(context, database, config.overwrite)
    cost = StageCost(database, batch_id, ["linkedin_search", "linkedin_profile", "linkedin_url"])
    with _paced(database, apify):
        progress = _progress(database, batch_id, "linkedin")
        stats = LinkedInStage(database.database_url, batch_id, apify, options, context.log.info, budget, progress).run()
    with database.connection() as conn:
        credits = cost.metadata(conn)
        check = linkedin_url_check(conn, batch_id)
        _record_failures(context, conn, batch_id, "linkedin", stats.failures)
        _settle_budget(conn, batch_id, "linkedin", budget)
    retry_failed_leads(context, len(stats.failures), "linkedin: leads")
    scores = sorted(stats.scores)
    metadata = {
        "leads": dg.MetadataValue.int(stats.leads),
        "already_done": dg.MetadataValue.int(stats.skipped_done),
        "searched": dg.MetadataValue.int(stats.searched),
        "found": dg.MetadataValue.int(stats.found),
        "verified": dg.MetadataValue.int(stats.found),
        "below_threshold": dg.MetadataValue.int(stats.below_threshold),
        "from_people_search": dg.MetadataValue.int(stats.from_people_search),
        "profiles": dg.MetadataValue.int(stats.profiles),
        "photos": dg.MetadataValue.int(stats.photos),
        "photo_errors": dg.MetadataValue.int(stats.photo_errors),
        "actor_runs": dg.MetadataValue.int(stats.runs),
        "failed_leads": dg.MetadataValue.int(len(stats.failures)),
        "median_score": dg.MetadataValue.float(scores[len(scores) // 2] if scores else 0.0),
        "leads_updated": dg.MetadataValue.int(stats.leads_updated),
        "over_budget": dg.MetadataValue.int(stats.over_budget),
    } | credits
    return dg.MaterializeResult(metadata=metadata, check_results=[check])
