"""The email stage of one batch: verify the emails leads have, discover the ones they lack, store both as facts.

Per chunk of leads: MX answers come from the per-domain cache or one bulk lookup; existing addresses are
verified; verified addresses teach each domain's pattern (so the chunk's own leads already help); leads without
an address get candidates in pattern order, verified until one is deliverable. A catch-all or silent domain
cannot confirm a mailbox: there the top candidate is kept as "risky" with its probability, and the people-
search actor (when configured) is asked. Facts, pattern evidence, domain caches and the leads' visible emails
are written in one transaction per chunk; paid answers are written as they are bought.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from leads_pipeline.lib.clients.dns import MxResult
from leads_pipeline.lib.contacts import people
from leads_pipeline.lib.contacts.failures import Failures
from leads_pipeline.lib.contacts.patterns import Candidate, PatternModel, detect_patterns
from leads_pipeline.lib.contacts.verdicts import Verdict
from leads_pipeline.lib.contacts.verifier import EmailVerifier
from leads_pipeline.lib.credits import Budget, OverBudget
from leads_pipeline.lib.errors import TransientError
from leads_pipeline.lib.store import contacts as store
from leads_pipeline.lib.store.audit import mask
from leads_pipeline.lib.store.db import connect

if TYPE_CHECKING:  # the resource loads Dagster and apify-client, which the stage's estimate does not use
    from leads_pipeline.lib.clients.apify import ApifyResource

PAID_METHODS = frozenset({"zerobounce", "neverbounce"})
PROBING_BLOCKED = "smtp (probing blocked)"
"""The failure cause of a lead whose mail hosts took no connection while no host of the run did."""
FIELDS = ("email", "email_status", people.FIELD)


@dataclass(frozen=True)
class EmailOptions:
    """overwrite: re-check every lead and replace its email with a better verified one; discover: guess
    addresses for leads without one; max_candidates: how many guesses are verified per lead; people_search:
    ask the people-search actor when guessing fails; cache_days: how old a stored paid answer may be reused."""

    overwrite: bool = False
    discover: bool = True
    max_candidates: int = 4
    people_search: bool = True
    chunk_size: int = 500
    cache_days: int = 30
    mx_ttl_hours: int = 24


@dataclass
class EmailStats:
    leads: int = 0
    skipped_done: int = 0
    checked: Counter[str] = field(default_factory=Counter)
    discovery: Counter[str] = field(default_factory=Counter)
    found_by_source: Counter[str] = field(default_factory=Counter)
    leads_updated: int = 0
    catch_all_domains: set[str] = field(default_factory=set)
    over_budget: int = 0
    """Paid calls (verifications, people searches) not made because the credit budget did not allow them."""
    failures: Failures = field(default_factory=Failures)
    """Leads whose paid verifier or people search failed: their address stays unknown or unsearched, and a
    rerun asks again."""

    @property
    def verified(self) -> int:
        return self.checked["valid"] + self.checked["role"]

    @property
    def found(self) -> int:
        return self.discovery["valid"]


@dataclass(frozen=True)
class Discovery:
    """What discovery settled on for one lead: the address (None when nothing), its verdict and source."""

    lead_id: int
    domain: str
    email: str | None
    verdict: Verdict | None
    source: str
    confidence: int
    candidate: Candidate | None
    tried: tuple[tuple[str, str, str], ...]  # (email, status, method) in the order asked
    reason: str

    @property
    def status(self) -> str:
        return self.verdict.status if self.verdict else "not_found"


def lead_domain(lead: dict[str, Any]) -> str | None:
    """The lead's company domain, else its website's host without "www."."""
    domain = (lead.get("company_domain") or "").strip().lower()
    if not domain and lead.get("website"):
        text = str(lead["website"]).strip()
        host = urlsplit(text if "//" in text else "//" + text).hostname or ""
        domain = host.lower().removeprefix("www.")
    return domain or None


class EmailStage:
    """Runs the email stage over a batch; one instance per run (it holds the run's pattern model)."""

    def __init__(
        self,
        database_url: str,
        batch_id: str,
        verifier: EmailVerifier,
        apify: ApifyResource | None,
        options: EmailOptions,
        log: Callable[[str], None] = lambda _m: None,
        budget: Budget | None = None,
        progress: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.database_url = database_url
        self.batch_id = batch_id
        self.budget = budget or Budget(None)
        self.verifier = verifier
        self.apify = apify if apify is not None and apify.is_configured and options.people_search else None
        self.options = options
        self.log = log
        self.progress = progress
        """Told how many leads each chunk held once it is written (the job's progress)."""
        self.stats = EmailStats()
        self.model = PatternModel()
        self._model_lock = threading.Lock()
        self._workers = max(1, verifier.settings.workers)

    def run(self) -> EmailStats:
        with connect(self.database_url, autocommit=True) as reader:
            self.model = PatternModel.from_rows(store.pattern_counts(reader))
            ledger = store.VerificationLedger(
                self.database_url, self.batch_id, timedelta(days=self.options.cache_days), self.budget
            )
            with ledger:
                self.verifier.ledger = ledger
                for chunk in store.batch_lead_chunks(reader, self.batch_id, self.options.chunk_size):
                    self._chunk(reader, ledger, chunk)
                    self.log(f"email: {self.stats.leads:,} leads done")
                    self.progress(len(chunk))
            self.stats.over_budget += ledger.refused
        return self.stats

    def find(self, first_name: str, last_name: str, domain: str) -> Discovery:
        """Discover one person's address outside any batch (``leads find-email``); nothing is bought."""
        with connect(self.database_url, autocommit=True) as reader:
            self.model = PatternModel.from_rows(store.pattern_counts(reader))
            ledger = store.VerificationLedger(self.database_url, None, timedelta(days=self.options.cache_days))
            with ledger:
                self.verifier.ledger = ledger
                mx = self._mx(reader, {domain.lower()})
                lead = {"id": 0, "first_name": first_name, "last_name": last_name, "company_domain": domain}
                return self._discover(lead, mx, {}, ledger)

    # --- one chunk ---------------------------------------------------------------------------------------

    def _chunk(self, reader: store.Conn, ledger: store.VerificationLedger, chunk: list[dict[str, Any]]) -> None:
        self.stats.leads += len(chunk)
        ids = [lead["id"] for lead in chunk]
        latest = store.latest_facts(reader, ids, FIELDS)
        done_here = {f["lead_id"] for f in store.batch_facts(reader, self.batch_id, ids, ["email"])}
        to_verify: dict[int, str] = {}
        to_discover: list[dict[str, Any]] = []
        # a verdict ages like a cached paid answer: older than cache_days, the address is verified again (a
        # mailbox found valid a year ago may be gone); before, a settled verdict was never checked again
        stale_before = datetime.now(UTC) - timedelta(days=self.options.cache_days)
        for lead in chunk:
            status = latest.get((lead["id"], "email_status"))
            if lead["email"]:
                settled = (
                    status is not None
                    and status["details"].get("email") == lead["email"]
                    and status["value"] != "unknown"
                    and status["observed_at"] > stale_before
                )
                if settled and not self.options.overwrite:
                    self.stats.skipped_done += 1
                    continue
                to_verify[lead["id"]] = lead["email"]
            elif self.options.discover:
                if lead["id"] in done_here and not self.options.overwrite:
                    self.stats.skipped_done += 1
                    continue
                to_discover.append(lead)
        parsed = {lead_id: self.verifier.parse(email) for lead_id, email in to_verify.items()}
        domains = {p.domain for p in parsed.values() if p.valid_syntax}
        domains |= {d for d in (lead_domain(lead) for lead in to_discover) if d}
        mx = self._mx(reader, domains)
        with ThreadPoolExecutor(self._workers) as pool:
            checked = dict(
                zip(
                    parsed,
                    pool.map(lambda i: self.verifier.verify_parsed(parsed[i], mx.get(parsed[i].domain), i), parsed),
                    strict=True,
                )
            )
        leads = {lead["id"]: lead for lead in chunk}
        evidence = self._learn(leads, checked)
        if self.options.overwrite and self.options.discover:
            to_discover += [leads[i] for i, v in checked.items() if v.status == "invalid"]
        with ThreadPoolExecutor(self._workers) as pool:
            found = list(pool.map(lambda lead: self._discover(lead, mx, latest, ledger), to_discover))
        evidence += [
            (d.domain, d.email.split("@")[0], d.candidate.pattern if d.candidate else "", "discovery")
            for d in found
            if d.email and d.verdict and d.verdict.deliverable and d.candidate
        ]
        self._write(checked, found, evidence)

    def _mx(self, reader: store.Conn, domains: set[str]) -> dict[str, MxResult]:
        mx = store.load_mx(reader, domains)
        missing = domains - set(mx)
        if missing:
            fresh = self.verifier.mx_many(sorted(missing))
            mx.update(fresh)
            with connect(self.database_url) as conn:
                store.save_mx(conn, fresh.values(), timedelta(hours=self.options.mx_ttl_hours))
        prober = self.verifier.prober
        if prober is not None:
            for domain, catch_all in store.load_catch_all(reader, domains, timedelta(days=7)).items():
                if prober.known_catch_all(domain) is None:
                    prober.remember_catch_all(domain, catch_all)
        return mx

    def _learn(self, leads: dict[int, dict[str, Any]], checked: dict[int, Verdict]) -> list[tuple[str, str, str, str]]:
        """Pattern evidence from the leads' own verified addresses (catch-all ones too: they are the only
        evidence such domains ever give, and they come from the user's data, not from a guess)."""
        evidence = []
        for lead_id, verdict in checked.items():
            lead = leads[lead_id]
            if verdict.status not in ("valid", "catch_all") or not (lead["first_name"] and lead["last_name"]):
                continue
            local, _, domain = verdict.email.rpartition("@")
            patterns = detect_patterns(lead["first_name"], lead["last_name"], local, domain)
            if patterns:
                evidence.append((domain, local, patterns[0], "lead"))
                with self._model_lock:
                    self.model.add(domain, patterns[0])
        return evidence

    # --- discovery ---------------------------------------------------------------------------------------

    def _discover(
        self,
        lead: dict[str, Any],
        mx: dict[str, MxResult],
        latest: dict[tuple[int, str], dict[str, Any]],
        ledger: store.VerificationLedger,
    ) -> Discovery:
        lead_id = lead["id"]
        domain = lead_domain(lead)
        first, last = (lead["first_name"] or "").strip(), (lead["last_name"] or "").strip()
        if not (domain and first and last):
            missing = [n for n, v in (("first name", first), ("last name", last), ("company domain", domain)) if not v]
            return Discovery(lead_id, domain or "", None, None, "pattern", 0, None, (), "no " + " or ".join(missing))
        with self._model_lock:
            candidates = self.model.candidates(first, last, domain, self.options.max_candidates)
        erased = ledger.suppressed(c.email for c in candidates)  # an erased person's address is not looked for
        candidates = [c for c in candidates if c.email not in erased]
        tried: list[tuple[str, str, str]] = []
        result: tuple[Candidate, Verdict] | None = None
        domain_mx = mx.get(domain)
        for candidate in candidates:
            verdict = self._verify_candidate(candidate, domain_mx, lead_id)
            tried.append((candidate.email, verdict.status, verdict.method))
            if verdict.deliverable:
                return self._found(lead_id, domain, candidate, verdict, tried, "pattern")
            if verdict.status != "invalid":  # catch-all, silent or unknown host: more probes tell nothing more
                result = (candidates[0], verdict)
                break
        if self.apify is not None:
            provider = self._people_search(lead, domain, domain_mx, latest, tried)
            if provider is not None:
                return provider
        if result is not None:
            candidate, verdict = result
            scale = 0.9 if verdict.status == "catch_all" else 0.6
            confidence = max(1, min(85, round(candidate.probability * 100 * scale)))
            reason = f"{verdict.status}: the domain cannot confirm a mailbox; most likely address by pattern"
            return Discovery(
                lead_id, domain, candidate.email, verdict, "pattern", confidence, candidate, tuple(tried), reason
            )
        reason = "no candidate was deliverable" if candidates else "no candidate address"
        return Discovery(lead_id, domain, None, None, "pattern", 0, None, tuple(tried), reason)

    def _verify_candidate(self, candidate: Candidate, mx: MxResult | None, lead_id: int) -> Verdict:
        prober = self.verifier.prober
        domain = candidate.email.rpartition("@")[2]
        if prober is not None and prober.known_catch_all(domain):
            return Verdict(
                candidate.email,
                "catch_all",
                50,
                "smtp",
                (f"{domain} accepts any address (catch-all, known from an earlier probe)",),
                mx_hosts=mx.hosts if mx else (),
            )
        return self.verifier.verify_parsed(self.verifier.parse(candidate.email), mx, lead_id)

    def _people_search(
        self,
        lead: dict[str, Any],
        domain: str,
        mx: MxResult | None,
        latest: dict[tuple[int, str], dict[str, Any]],
        tried: list[tuple[str, str, str]],
    ) -> Discovery | None:
        assert self.apify is not None
        usable, match = people.stored_match(
            latest.get((lead["id"], people.FIELD)), timedelta(days=self.options.cache_days)
        )
        if not usable:
            try:
                match = people.search_person(
                    self.apify,
                    self.database_url,
                    self.batch_id,
                    lead["id"],
                    lead["first_name"],
                    lead["last_name"],
                    domain,
                    "email",
                    self.budget,
                )
            except TransientError as error:
                self.log(f"email: people search failed for lead {lead['id']}: {mask(str(error))}")
                self.stats.failures.add(people.source_name(self.apify), error, [lead["id"]])
                return None
            except OverBudget:
                with self._model_lock:
                    self.stats.over_budget += 1
                return None
        if match is None or not match.email:
            return None
        parsed = self.verifier.parse(match.email)
        verdict = self.verifier.verify_parsed(parsed, mx if parsed.domain == domain else None, lead["id"])
        tried.append((parsed.email, verdict.status, verdict.method))
        if verdict.status in ("invalid", "disposable"):
            return None
        confidence = {"valid": 95, "role": 60, "catch_all": 80}.get(verdict.status, 70)
        source = people.source_name(self.apify)
        reason = f"{source} reported it ({match.email_status or 'no status'}); {verdict.status} by {verdict.method}"
        return Discovery(lead["id"], domain, parsed.email, verdict, source, confidence, None, tuple(tried), reason)

    @staticmethod
    def _found(
        lead_id: int,
        domain: str,
        candidate: Candidate,
        verdict: Verdict,
        tried: list[tuple[str, str, str]],
        source: str,
    ) -> Discovery:
        reason = f"candidate #{candidate.rank + 1} ({candidate.pattern}) is deliverable"
        return Discovery(
            lead_id, domain, candidate.email, verdict, source, verdict.confidence, candidate, tuple(tried), reason
        )

    # --- writing -----------------------------------------------------------------------------------------

    def _write(
        self, checked: dict[int, Verdict], found: list[Discovery], evidence: list[tuple[str, str, str, str]]
    ) -> None:
        facts: list[store.Fact] = []
        catch_all: dict[str, bool] = {}
        for lead_id, verdict in checked.items():
            self._note_failure(lead_id, verdict)
            self.stats.checked[verdict.status] += 1
            if verdict.method not in PAID_METHODS:
                facts.append(
                    store.Fact(
                        lead_id,
                        "email_status",
                        verdict.status,
                        verdict.method,
                        verdict.confidence,
                        0.0,
                        verdict.details(),
                    )
                )
            # the address the lead came with, as a fact like any discovered one: its source and how sure it is
            status = {"status": verdict.status, "method": verdict.method, "risky": verdict.status != "valid"}
            facts.append(store.Fact(lead_id, "email", verdict.email, "existing", verdict.confidence, 0.0, status))
            self._note_catch_all(verdict, catch_all)
        updates: dict[int, str | None] = {}
        for d in found:
            if d.verdict is not None:
                self._note_failure(d.lead_id, d.verdict)
            if d.lead_id in self.stats.failures:  # no fact: it would mark the lead searched, and a rerun skip it
                continue
            self.stats.discovery[d.status] += 1
            details: dict[str, Any] = {
                "status": d.status,
                "risky": d.status in ("catch_all", "unknown"),
                "reason": d.reason,
                "tried": [{"email": e, "status": s, "method": m} for e, s, m in d.tried],
            }
            if d.candidate is not None:
                details |= {
                    "pattern": d.candidate.pattern,
                    "probability": d.candidate.probability,
                    "rank": d.candidate.rank,
                }
            facts.append(store.Fact(d.lead_id, "email", d.email, d.source, d.confidence, 0.0, details))
            if d.verdict is not None and d.email is not None:
                self.stats.found_by_source[d.source] += 1
                if d.verdict.method not in PAID_METHODS:
                    v = d.verdict
                    facts.append(
                        store.Fact(d.lead_id, "email_status", v.status, v.method, v.confidence, 0.0, v.details())
                    )
                self._note_catch_all(d.verdict, catch_all)
                if d.verdict.status == "valid":
                    updates[d.lead_id] = d.email
        with connect(self.database_url) as conn:
            store.insert_facts(conn, self.batch_id, facts)
            store.add_pattern_evidence(conn, [e for e in evidence if e[2]])
            store.save_catch_all(conn, catch_all)
            self.stats.leads_updated += len(
                store.update_lead_columns(conn, "email", updates, overwrite=self.options.overwrite)
            )
        self.stats.catch_all_domains |= {d for d, v in catch_all.items() if v}

    def _note_failure(self, lead_id: int, verdict: Verdict) -> None:
        """A paid verifier that did not answer, a nameserver that failed for now (timeout, SERVFAIL), or mail hosts
        none of which took a connection while no host of the run so far did (``EmailVerifier.blocked_hosts``:
        probing looks blocked on our side) leave the address unknown: the lead failed, not "unknown"."""
        answer = verdict.providers.get(verdict.method, {})
        if verdict.method in PAID_METHODS and answer.get("error"):
            self.stats.failures.add_reason(f"{verdict.method} (TransientError)", str(answer["error"]), [lead_id])
        elif verdict.method == "mx" and answer.get("transient"):
            self.stats.failures.add_reason("dns (TransientError)", str(answer.get("error")), [lead_id])
        elif verdict.method == "smtp" and answer.get("unreachable") and self.verifier.blocked_hosts:
            self.stats.failures.add_reason(PROBING_BLOCKED, str(answer.get("message")), [lead_id])

    @staticmethod
    def _note_catch_all(verdict: Verdict, catch_all: dict[str, bool]) -> None:
        if verdict.method != "smtp":
            return
        domain = verdict.email.rpartition("@")[2]
        if verdict.status == "catch_all":
            catch_all[domain] = True
        elif verdict.status in ("valid", "invalid", "role"):
            catch_all.setdefault(domain, False)
