"""The phone stage of one batch: type and validate the numbers leads have, find direct dials for those without.

Numbers are typed offline (phonenumbers) with the lead's country, then the configured default. Where the
numbering plan cannot tell a mobile from a landline (US/CA), Twilio Lookup v2 is asked when configured, once per
number: its answer is a ``phone_line_type`` fact with its credits (Twilio's USD price in details), written as it
is bought and reused after, while fresh (``cache_days``), for any lead with that number, in any later job or
list. A number is looked up once per job even when a lead has it in both columns or several leads share it (the
other leads get a 0-cost fact of the answer, ``reused`` in details), and a lead's stored answers are matched per
number, so a rerun pays for none of them again. Every paid call first reserves its price in the job's credit
budget.
Leads without a number get the direct dials of the people-search actor (the same answer the email stage may
already have bought). A number found to be mobile fills the lead's mobile_phone.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from leads_pipeline.lib.clients.actors import PersonMatch
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.twilio import TwilioLookupResource
from leads_pipeline.lib.contacts import people
from leads_pipeline.lib.contacts.email_batch import lead_domain
from leads_pipeline.lib.contacts.failures import Failures
from leads_pipeline.lib.contacts.phones import AMBIGUOUS, PhoneInfo, analyze, twilio_line_type
from leads_pipeline.lib.credits import Budget, OverBudget, charge, price
from leads_pipeline.lib.errors import TransientError
from leads_pipeline.lib.privacy.crypto import blind_index
from leads_pipeline.lib.store import contacts as store
from leads_pipeline.lib.store import purchases
from leads_pipeline.lib.store.audit import mask
from leads_pipeline.lib.store.db import ThreadConnections, connect

FIELDS = ("phone", "mobile_phone", "phone_line_type", people.FIELD)
TWILIO = "twilio"


@dataclass(frozen=True)
class PhoneOptions:
    """twilio: ask Twilio for numbers phonenumbers cannot type ("ambiguous"), for all, or never;
    direct_dials: ask the people-search actor for leads without a number."""

    overwrite: bool = False
    default_region: str = "US"
    twilio: Literal["ambiguous", "always", "never"] = "ambiguous"
    direct_dials: bool = True
    chunk_size: int = 500
    cache_days: int = 30
    workers: int = 8


@dataclass
class PhoneStats:
    leads: int = 0
    skipped_done: int = 0
    checked: int = 0
    valid: int = 0
    line_types: Counter[str] = field(default_factory=Counter)
    twilio_lookups: int = 0
    searched: int = 0
    found: int = 0
    mobile: int = 0
    dnc: int = 0
    dnc_snapshot: str | None = None
    leads_updated: int = 0
    over_budget: int = 0
    """Paid calls (Twilio lookups, people searches) not made because the credit budget did not allow them."""
    failures: Failures = field(default_factory=Failures)
    """Leads whose Twilio lookup or people search failed: not typed or searched, asked again by a rerun."""


@dataclass
class _Number:
    lead_id: int
    info: PhoneInfo
    source: str
    line_type: str
    twilio: dict[str, Any] | None = None


class PhoneStage:
    def __init__(
        self,
        database_url: str,
        batch_id: str,
        twilio: TwilioLookupResource | None,
        apify: ApifyResource | None,
        options: PhoneOptions,
        log: Callable[[str], None] = lambda _m: None,
        budget: Budget | None = None,
        progress: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.database_url = database_url
        self.batch_id = batch_id
        self.budget = budget or Budget(None)
        self.twilio = twilio if twilio is not None and twilio.is_configured and options.twilio != "never" else None
        self.apify = apify if apify is not None and apify.is_configured and options.direct_dials else None
        self.options = options
        self.log = log
        self.progress = progress
        """Told how many leads each chunk held once it is written (the job's progress)."""
        self.stats = PhoneStats()
        self._max_age = timedelta(days=options.cache_days)
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[dict[str, Any], datetime]] = {}
        """Twilio answers bought in this job (and when), by number: a number several leads share is bought once."""
        self._connections = ThreadConnections(database_url)
        """The workers' connections, one each, kept for their next number (opening one per number bought took
        ~10 ms)."""

    def run(self) -> PhoneStats:
        try:
            # one pool for all chunks: its workers keep their connections (``_connections``) from chunk to chunk
            with (
                connect(self.database_url, autocommit=True) as reader,
                ThreadPoolExecutor(self.options.workers) as pool,
            ):
                snapshot = store.dnc_snapshot(reader)
                self.stats.dnc_snapshot = snapshot.isoformat() if snapshot else None
                for chunk in store.batch_lead_chunks(reader, self.batch_id, self.options.chunk_size):
                    self._chunk(reader, pool, chunk)
                    self.log(f"phone: {self.stats.leads:,} leads done")
                    self.progress(len(chunk))
        finally:
            self._connections.close()
        return self.stats

    def _chunk(self, reader: store.Conn, pool: ThreadPoolExecutor, chunk: list[dict[str, Any]]) -> None:
        self.stats.leads += len(chunk)
        ids = [lead["id"] for lead in chunk]
        latest = store.latest_facts(reader, ids, FIELDS)
        done_here = {f["lead_id"] for f in store.batch_facts(reader, self.batch_id, ids, ["phone"])}
        numbers: list[_Number] = []
        to_search: list[dict[str, Any]] = []
        for lead in chunk:
            known = latest.get((lead["id"], "phone"))
            if lead["phone"] or lead["mobile_phone"]:
                if known and known["value"] == (lead["phone"] or lead["mobile_phone"]) and not self.options.overwrite:
                    self.stats.skipped_done += 1
                    continue
                numbers += self._lead_numbers(lead)
            elif self.apify is not None:
                if lead["id"] in done_here and not self.options.overwrite:
                    self.stats.skipped_done += 1
                    continue
                to_search.append(lead)
        numbers += [n for batch in pool.map(lambda lead: self._direct_dials(lead, latest), to_search) for n in batch]
        if self.twilio is not None:
            wanted: dict[str, list[_Number]] = {}
            for n in numbers:
                if n.info.valid and n.info.e164 and (self.options.twilio == "always" or n.line_type in AMBIGUOUS):
                    wanted.setdefault(n.info.e164, []).append(n)
            stored = store.twilio_answers(reader, ids, TWILIO, self._max_age)
            elsewhere = store.twilio_answers_by_number(reader, list(wanted), TWILIO, self._max_age)
            list(pool.map(lambda group: self._line_type(group, stored, elsewhere), wanted.values()))
        dialled = [n.info.e164 for n in numbers if n.info.e164]
        on_dnc = store.dnc_numbers(reader, dialled) if self.stats.dnc_snapshot else set()
        self._write(chunk, numbers, to_search, on_dnc)

    def _lead_numbers(self, lead: dict[str, Any]) -> list[_Number]:
        """The lead's phone and mobile_phone typed offline, once per distinct number (the same number in both
        columns is one number: one fact, one Twilio lookup)."""
        out: list[_Number] = []
        seen: set[str] = set()
        for column in ("phone", "mobile_phone"):
            if lead[column]:
                info = analyze(lead[column], lead["country"], self.options.default_region)
                if info.e164 is not None and info.e164 in seen:
                    continue
                seen.add(info.e164 or lead[column])
                out.append(_Number(lead["id"], info, "phonenumbers", info.line_type))
        return out

    def _direct_dials(self, lead: dict[str, Any], latest: dict[tuple[int, str], dict[str, Any]]) -> list[_Number]:
        assert self.apify is not None
        domain = lead_domain(lead)
        if not (domain and lead["first_name"] and lead["last_name"]):
            return []
        usable, match = people.stored_match(latest.get((lead["id"], people.FIELD)), self._max_age)
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
                    "phone",
                    self.budget,
                )
            except TransientError as error:
                self.log(f"phone: people search failed for lead {lead['id']}: {mask(str(error))}")
                self.stats.failures.add(people.source_name(self.apify), error, [lead["id"]])
                return []
            except OverBudget:
                with self._lock:
                    self.stats.over_budget += 1
                return []
        return self._match_numbers(lead, match)

    def _match_numbers(self, lead: dict[str, Any], match: PersonMatch | None) -> list[_Number]:
        if match is None:
            return []
        source = people.source_name(self.apify) if self.apify else "apify"
        out = []
        for phone in match.phones:
            info = analyze(phone.number, lead["country"], self.options.default_region)
            if info.e164 is None:
                continue
            provider_type = (phone.type or "").strip()
            line_type = twilio_line_type(provider_type) if provider_type in ("mobile", "landline") else info.line_type
            out.append(_Number(lead["id"], info, source, line_type))
        return out

    def _line_type(
        self,
        group: list[_Number],
        stored: dict[tuple[int, str], tuple[dict[str, Any], datetime]],
        elsewhere: dict[str, tuple[dict[str, Any], datetime]],
    ) -> None:
        """Type one number (``group``: its leads in this chunk) with Twilio, paying at most once while an answer
        is fresh: the newest fresh answer stored for one of these leads or for any other lead holding the number
        (another job, another list: it describes the number the user's lead already has, nothing of the lead it
        was bought for), or one bought earlier in this job, is reused; else one is bought. Every other lead gets
        a 0-cost fact of the answer, so its next job finds it stored; that fact keeps the time of the lookup, so
        the answer expires ``cache_days`` after it was bought however often it is passed on (observed now, each
        reuse would keep it fresh for ever)."""
        e164 = group[0].info.e164
        assert self.twilio is not None and e164 is not None
        found = [stored[(n.lead_id, e164)] for n in group if (n.lead_id, e164) in stored]
        found += [elsewhere[e164]] if e164 in elsewhere else []
        bought = max(found, key=lambda item: item[1]) if found else None
        paid_by = None
        if bought is None:
            with self._lock:
                bought = self._answers.get(e164)
        if bought is None:  # another job may be buying it: wait for that, then look again (lib/store/purchases)
            key = str(blind_index("phone", e164))
            with self._connections.held() as conn, purchases.buying(conn, TWILIO, key):
                bought = store.twilio_answers_by_number(conn, [e164], TWILIO, self._max_age).get(e164)
                if bought is None:
                    paid_by = self._payer([n.lead_id for n in group])
                    if paid_by is None:
                        return
                    bought = self._lookup(conn, paid_by, e164, [n.lead_id for n in group])
                    if bought is None:
                        return
                    with self._lock:
                        self._answers[e164] = bought
        answer, observed_at = bought
        value, confidence = _line_type_value(answer)
        reused = {
            n.lead_id: store.Fact(
                n.lead_id,
                "phone_line_type",
                value,
                TWILIO,
                confidence,
                0.0,
                {**_free(answer), "reused": True},
                observed_at,
            )
            for n in group
            if n.lead_id != paid_by and (n.lead_id, e164) not in stored
        }
        if reused:
            with self._connections.held() as conn, conn.transaction():
                store.insert_facts(conn, self.batch_id, reused.values())
        for n in group:
            n.twilio = answer
            if answer.get("valid") and answer.get("type"):
                n.line_type = twilio_line_type(str(answer["type"]))

    def _payer(self, lead_ids: list[int]) -> int | None:
        """Of the leads sharing a number, the one furthest from its cap pays the lookup, when it (and the job's
        budget) has room for it: its price is then held. None: the lookup is not made."""
        payer, refused = self.budget.hold_roomiest(price("twilio_lookup"), lead_ids)
        if payer is not None and refused is None:
            return payer
        with self._lock:
            self.stats.over_budget += 1
        return None

    def _lookup(
        self, conn: store.Conn, lead_id: int, e164: str, holders: list[int]
    ) -> tuple[dict[str, Any], datetime] | None:
        """Buy one Twilio answer for ``e164`` as a fact of ``lead_id``, whose price ``_payer`` held, written on
        ``conn`` in the transaction holding the number's lock: the answer and when it was given (None: no answer;
        Twilio failing fails every lead of ``holders``, the number's)."""
        assert self.twilio is not None
        reserved = price("twilio_lookup")
        try:
            with self.budget.released_on_error(reserved, lead_id):
                result = self.twilio.lookup(e164)
        except TransientError as error:
            self.log(f"phone: Twilio lookup failed for lead {lead_id}: {mask(str(error))}")
            self.stats.failures.add(TWILIO, error, holders)
            return None
        observed_at = datetime.now(UTC)
        found = result.valid and bool(result.line_type)
        credits, billing = charge("twilio_lookup", found=found, provider_cost=result.cost_usd, provider_unit="usd")
        self.budget.settle(reserved, credits, lead_id)
        details: dict[str, Any] = {
            "number": e164,
            "valid": result.valid,
            "type": result.line_type,
            "carrier": result.carrier_name,
            "error_code": result.error_code,
            **billing,
        }
        value, confidence = _line_type_value(details)
        fact = store.Fact(lead_id, "phone_line_type", value, TWILIO, confidence, credits, details, observed_at)
        store.insert_facts(conn, self.batch_id, [fact])
        with self._lock:
            self.stats.twilio_lookups += 1
        return details, observed_at

    def _write(
        self, chunk: list[dict[str, Any]], numbers: list[_Number], searched: list[dict[str, Any]], on_dnc: set[str]
    ) -> None:
        leads = {lead["id"]: lead for lead in chunk}
        facts: list[store.Fact] = []
        phones: dict[int, str | None] = {}
        mobiles: dict[int, str | None] = {}
        with_number: set[int] = set()
        failed = self.stats.failures
        for n in numbers:
            if n.lead_id in failed:  # no fact: a rerun types it again (one would mark the lead done)
                continue
            info = n.info
            self.stats.checked += n.source == "phonenumbers"
            self.stats.valid += info.valid
            self.stats.line_types[n.line_type] += 1
            dnc = info.e164 in on_dnc
            self.stats.dnc += dnc
            details = {
                **info.details(),
                "line_type": n.line_type,
                "raw": info.raw,
                "dnc": dnc,
                "dnc_snapshot": self.stats.dnc_snapshot,
            }
            if n.twilio is not None:
                details["twilio"] = n.twilio
            confidence = (90 if info.valid else 10) if n.source == "phonenumbers" else (80 if info.valid else 10)
            facts.append(store.Fact(n.lead_id, "phone", info.e164, n.source, confidence, 0.0, details))
            if not info.valid or info.e164 is None:
                continue
            lead = leads[n.lead_id]
            if n.source != "phonenumbers" and n.lead_id not in with_number:
                with_number.add(n.lead_id)
                self.stats.found += 1
                phones.setdefault(n.lead_id, info.e164)
            if n.line_type == "mobile" and n.lead_id not in mobiles:
                facts.append(
                    store.Fact(n.lead_id, "mobile_phone", info.e164, TWILIO if n.twilio else n.source, 85, 0.0, details)
                )
                if lead["mobile_phone"] != info.e164:
                    mobiles[n.lead_id] = info.e164
                self.stats.mobile += 1
        for lead in searched:
            self.stats.searched += 1
            if lead["id"] not in with_number and lead["id"] not in failed:
                source = people.source_name(self.apify) if self.apify else "apify"
                facts.append(store.Fact(lead["id"], "phone", None, source, 0, 0.0, {"reason": "no direct dial found"}))
        with connect(self.database_url) as conn:
            store.insert_facts(conn, self.batch_id, facts)
            updated = store.update_lead_columns(conn, "phone", phones, overwrite=self.options.overwrite)
            updated |= store.update_lead_columns(conn, "mobile_phone", mobiles, overwrite=self.options.overwrite)
        self.stats.leads_updated += len(updated)  # a lead given a number and a mobile is one lead updated


def _line_type_value(answer: dict[str, Any]) -> tuple[str, int]:
    """A Twilio answer's phone_line_type value and confidence."""
    found = bool(answer.get("valid") and answer.get("type"))
    value = twilio_line_type(str(answer.get("type") or "")) if answer.get("valid") else "invalid"
    return value, 90 if found else 30


def _free(answer: dict[str, Any]) -> dict[str, Any]:
    """A paid answer's details as a reused fact carries them: the provider's price stays on the paying fact."""
    return {k: v for k, v in answer.items() if not k.startswith("provider_cost") and k != "price_item"}
