"""The sync engine: plan a push, send it in batches with retries that lose nothing, pull with conflict rules.

A run is a state machine recorded in ``crm_sync_runs`` (running -> completed | partial | stopped | failed) with
its counts. Each batch's results are written in one transaction right after the CRM answered: a crash between
sending and recording leaves the leads unrecorded, so the next run sends them again, and the upsert by match key
(or look-up before create) turns that resend into an update, never a duplicate. Transient failures are retried
with backoff (and the server's Retry-After) within the run; what is still failing is kept in ``crm_rejects``
and sent again by every later sync until it succeeds or the CRM refuses it permanently.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from leads_pipeline.lib.crm import validation
from leads_pipeline.lib.crm.base import (
    AllocationUsedUp,
    Connector,
    OutgoingRecord,
    PushResult,
    RemoteField,
    RemoteRecord,
    RetryableError,
)
from leads_pipeline.lib.crm.conflicts import alike, merge
from leads_pipeline.lib.crm.connection import Connection, Direction
from leads_pipeline.lib.crm.inbound import as_sent, lead_values, taken
from leads_pipeline.lib.crm.mapping import map_lead, same, values_hash
from leads_pipeline.lib.crm.resource import parse_time
from leads_pipeline.lib.errors import ConfigurationError, LeadsError, PermanentError, TransientError
from leads_pipeline.lib.filters import Filter, parse_filter
from leads_pipeline.lib.privacy.crypto import is_sealed, keyring
from leads_pipeline.lib.ratelimit import Pacer
from leads_pipeline.lib.store import crm as store
from leads_pipeline.lib.store import crm_erasures, liveness
from leads_pipeline.lib.store.bulk import refresh_keys
from leads_pipeline.lib.store.db import connect, existing_leads, transaction
from leads_pipeline.lib.store.privacy import flag_opted_out

PULL_CHUNK = 200
T = TypeVar("T")


@dataclass(frozen=True)
class RetrySettings:
    """Attempts per record within one run, and the backoff between them."""

    attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    retry_after_max_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_max_s) + random.uniform(0, self.backoff_base_s / 2)
        backoff = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return random.uniform(backoff / 2, backoff)


def pause_for_retry(
    retry: RetrySettings, limiter: Pacer, sleep: Callable[[float], None], attempt: int, retry_after: float | None
) -> None:
    """Wait before another attempt: backoff, or the server's Retry-After, which pauses every caller of the bucket."""
    delay = retry.delay(attempt, retry_after)
    if retry_after is not None:
        limiter.pause(delay)
    sleep(delay)


def with_retries(
    call: Callable[[], T],
    retry: RetrySettings,
    limiter: Pacer,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """A whole CRM call (the field list a sync starts with) retried as record calls are: a transient failure
    (429, 5xx, timeout, a cut body) is tried again with backoff, up to ``retry.attempts`` times in all; the last
    failure is raised."""
    for attempt in range(1, retry.attempts + 1):
        try:
            return call()
        except RetryableError as exc:
            if attempt >= retry.attempts:
                raise
            pause_for_retry(retry, limiter, sleep, attempt, exc.retry_after_s)
    raise AssertionError("unreachable: the last attempt returns or raises")


def crm_fields(
    connection: Connection, connector: Connector, limiter: Pacer, retry: RetrySettings | None = None
) -> list[RemoteField]:
    """The CRM's field list (the first call of a sync and of ``leads crm test``), with the retries of record
    calls; still failing after them, one line naming the connection and the last failure."""
    retry = retry or RetrySettings()
    try:
        return with_retries(connector.describe_fields, retry, limiter)
    except RetryableError as exc:
        raise TransientError(
            f"{connection.name}: could not read the {connection.crm} field list in {retry.attempts} attempts "
            f"(last: {exc}); try again later"
        ) from None


@dataclass(frozen=True)
class Invalid:
    lead_id: int
    email: str | None
    reasons: tuple[str, ...]
    values_hash: str


@dataclass
class PushPlan:
    """What a push would do: records to send, leads that fail validation, and how many are already in sync."""

    send: list[tuple[OutgoingRecord, str]] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)
    unchanged: int = 0
    held: int = 0
    """Leads the CRM refused permanently and that have not changed since: sent again once they change."""
    skipped: int = 0
    """Leads that create_new / update_existing keep out."""


@dataclass
class SyncReport:
    sync_id: int
    connection: str
    direction: Direction
    status: str = "running"
    leads_to_sync: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    invalid: int = 0
    pulled: int = 0
    pulled_to_survivors: int = 0
    """Pulled records linked to a lead merged away since, applied to the lead it was merged into."""
    pull_skipped: int = 0
    """Pulled records of such a lead whose survivor is in a list the pull does not write to (in the sync log)."""
    recreated: int = 0
    """Pushed leads whose linked record was gone from the CRM (deleted or merged there since the last sync): created
    again, or linked to the record holding their match key or to the survivor of the merge (in the sync log, with
    both records)."""
    conflicts: int = 0
    requests: int = 0
    message: str | None = None

    def counts(self) -> dict[str, int]:
        return {
            "leads_to_sync": self.leads_to_sync,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "invalid": self.invalid,
            "pulled": self.pulled,
            "pulled_to_survivors": self.pulled_to_survivors,
            "pull_skipped": self.pull_skipped,
            "recreated": self.recreated,
            "conflicts": self.conflicts,
            "requests": self.requests,
        }

    def as_json(self) -> dict[str, Any]:
        """The PRD's sync response ({syncId, status, leadsToSync}) with the run's counts."""
        return {
            "syncId": str(self.sync_id),
            "status": self.status,
            "leadsToSync": self.leads_to_sync,
            "connection": self.connection,
            "direction": self.direction,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "invalid": self.invalid,
            "pulled": self.pulled,
            "pulledToSurvivors": self.pulled_to_survivors,
            "pullSkipped": self.pull_skipped,
            "recreated": self.recreated,
            "conflicts": self.conflicts,
            "requests": self.requests,
            "message": self.message,
        }


def push_filters(connection: Connection, where: Sequence[str] = ()) -> tuple[Filter, ...]:
    """The connection file's ``where`` and a run's ``--where`` filters (the lists' language, each checked), all of
    which must hold; none means the whole list. A run's filter may be sealed (``leads sync`` seals those on a
    person's details, which Dagster would keep in the run's config)."""
    filed = (parse_filter(connection.where, f"connection {connection.name}: where"),) if connection.where else ()
    return filed + tuple(parse_filter(keyring().open(text) if is_sealed(text) else text, "where") for text in where)


def plan_push(conn: store.Connection, connection: Connection, list_id: int, filters: Sequence[Filter] = ()) -> PushPlan:
    """Sort the eligible leads of the list into send / invalid / unchanged / held / skipped."""
    plan = PushPlan()
    plan.send.extend(classify(conn, connection, list_id, filters, plan))
    return plan


def classify(
    conn: store.Connection,
    connection: Connection,
    list_id: int,
    filters: Sequence[Filter],
    plan: PushPlan,
) -> Iterator[tuple[OutgoingRecord, str]]:
    """The records to send, as the eligible leads are read (so a push can start before the list is read to the
    end); the leads not to send are counted, and the invalid ones listed, in ``plan``."""
    for lead in store.eligible_leads(conn, connection.name, list_id, filters):
        if (planned := plan_lead(connection, lead, plan)) is not None:
            yield planned


def plan_lead(connection: Connection, lead: dict[str, Any], plan: PushPlan) -> tuple[OutgoingRecord, str] | None:
    """The record to send for ``lead`` (a row of ``store.eligible_leads``) and its values' hash, or None when it is
    not to be sent (counted, or listed as invalid, in ``plan``): its values and the fields an update leaves out are
    those of the lead and its link as read."""
    values = map_lead(lead, connection.mapping)
    digest = values_hash(values)
    linked = lead["remote_id"] is not None
    if linked and lead["last_hash"] == digest:
        plan.unchanged += 1
        return None
    if (linked and not connection.update_existing) or (not linked and not connection.create_new):
        plan.skipped += 1
        return None
    reasons = validation.problems(connection, values)
    if reasons:
        plan.invalid.append(Invalid(lead["id"], lead.get("email"), tuple(reasons), digest))
        return None
    if lead["reject_permanent"] and lead["reject_hash"] == digest:
        plan.held += 1
        return None
    key = str(values[connection.match_remote])
    agreed = lead["last_values"] if linked else None
    unchanged = frozenset(name for name, value in values.items() if name != connection.match_remote
                          and agreed and name in agreed and same(value, agreed[name]))  # fmt: skip
    record = OutgoingRecord(lead["id"], key, values, lead["remote_id"], unchanged=unchanged, agreed=agreed,
                            local_updated=lead["updated_at"], country=lead["country"])  # fmt: skip
    return record, digest


def invalid_outcomes(invalid: Iterable[Invalid]) -> list[store.Outcome]:
    """The sync log's entries of leads that failed validation."""
    return [
        store.Outcome(i.lead_id, "invalid", values_hash=i.values_hash, category="validation",
                      message="; ".join(i.reasons))
        for i in invalid
    ]  # fmt: skip


class SyncEngine:
    """One run of one connection against one list; ``run`` records everything it does in the store."""

    def __init__(
        self,
        database_url: str,
        connection: Connection,
        connector: Connector,
        limiter: Pacer,
        *,
        user: str,
        retry: RetrySettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        today: Callable[[], Any] = lambda: datetime.now(UTC).date(),
        concurrency: int = 8,
    ) -> None:
        self.database_url = database_url
        self.connection = connection
        self.connector = connector
        self.limiter = limiter
        self.user = user
        self.retry = retry or RetrySettings()
        self._sleep = sleep
        self._today = today
        self.concurrency = concurrency
        self._lock = threading.Lock()
        self._quota_start = 0
        self._reserved = 0
        self._left_out = 0
        self._scope: tuple[int, tuple[Filter, ...]] = (0, ())
        self._linked_lists: list[int] = []
        self._pulled_lists: set[int] = set()
        self._counted = 0

    def _count_requests(self, conn: store.Connection, report: SyncReport) -> None:
        """Add the requests sent since the last count to the run and the day's quota, in the transaction that
        records what they did: a sync killed outright had spent requests the quota never saw (they were added
        only at its end), so the next sync of the day could go over ``daily_quota``."""
        with self._lock:
            requests = self.limiter.acquired - self._counted
            self._counted += requests
            report.requests += requests
        store.add_quota(conn, self.connection.name, self._today(), requests)
        store.update_run(conn, report.sync_id, requests=report.requests)

    def run(
        self,
        direction: Direction,
        list_id: int | None,
        filters: Sequence[Filter] = (),
        *,
        dagster_run_id: str | None = None,
    ) -> SyncReport:
        """The run (of Dagster run ``dagster_run_id``), recorded from start to end; its lock
        (``liveness.SYNC_RUN``) is held on a session of its own from the moment the run appears until its end is
        written, so a run killed outright reads as interrupted, not as running forever."""
        with connect(self.database_url, autocommit=True) as keeper:
            with keeper.transaction():
                store.ensure_connection(keeper, self.connection.name, self.connection.crm)
                sync_id = store.start_run(keeper, self.connection.name, direction, list_id, self.user, dagster_run_id)
                liveness.claim(keeper, liveness.SYNC_RUN, sync_id)
            return self._run(sync_id, direction, list_id, filters)

    def _run(self, sync_id: int, direction: Direction, list_id: int | None, filters: Sequence[Filter]) -> SyncReport:
        name = self.connection.name
        report = SyncReport(sync_id, name, direction)
        self._counted = self.limiter.acquired
        try:
            if direction in ("pull", "bidirectional"):
                self._pull(report, list_id)
            if direction in ("push", "bidirectional"):
                filters = filters or push_filters(self.connection)
                if list_id is None:
                    raise ConfigurationError(f"{name}: a push needs a list: pass --list or set list: in the file")
                self._push(report, list_id, filters)
            if report.status == "running":
                report.status = "partial" if report.failed else "completed"
        except BaseException as exc:  # whatever stops the run (an interrupted Dagster run too) ends it as failed
            report.status = "failed"
            report.message = str(exc) if isinstance(exc, LeadsError) else f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with transaction(self.database_url) as conn:
                self._count_requests(conn, report)
                store.update_run(
                    conn, sync_id, status=report.status, message=report.message, finished=True, **report.counts()
                )
        return report

    # push ---------------------------------------------------------------------------------------------------

    def _push(self, report: SyncReport, list_id: int, filters: Sequence[Filter]) -> None:
        """Send the changed valid leads in batches, several in flight. A connector with a bulk API needs the
        whole plan first (the count decides); the others start sending while the list is still being read."""
        with connect(self.database_url) as conn:
            self._quota_start = store.quota_used(conn, self.connection.name, self._today())
            self._linked_lists = sorted({*store.linked_list_ids(conn, self.connection.name), list_id})
        self._reserved = 0
        self._left_out = 0
        self._scope = (list_id, tuple(filters))
        bulk_push = getattr(self.connector, "push_bulk", None)  # Salesforce Bulk API 2.0 above the threshold
        plan = PushPlan()
        with connect(self.database_url) as conn:
            records = classify(conn, self.connection, list_id, filters, plan)
            if bulk_push is not None:
                plan.send.extend(records)
                if len(plan.send) >= self.connection.bulk_threshold:
                    size = getattr(self.connector, "bulk_batch", 10_000)
                    self._send_batches(report, bulk_push, _chunks(plan.send, size), bulk=True)
                else:
                    self._send_batches(report, self.connector.push, _chunks(plan.send, self._batch_size()), bulk=False)
            else:
                plan.send.extend(
                    self._send_batches(report, self.connector.push, _chunks_of(records, self._batch_size()), bulk=False)
                )
        report.leads_to_sync = len(plan.send) - self._left_out
        report.unchanged += plan.unchanged + plan.held + plan.skipped
        report.invalid += len(plan.invalid)
        with transaction(self.database_url) as conn:
            store.record_outcomes(conn, self.connection.name, report.sync_id, invalid_outcomes(plan.invalid))
            store.update_run(conn, report.sync_id, leads_to_sync=report.leads_to_sync, invalid=report.invalid)

    def _batch_size(self) -> int:
        return min(self.connector.max_batch, self.connection.batch_size)

    def _send_batches(
        self,
        report: SyncReport,
        send: Callable[[Sequence[OutgoingRecord]], list[PushResult]],
        batches: Iterable[list[tuple[OutgoingRecord, str]]],
        *,
        bulk: bool,
    ) -> list[tuple[OutgoingRecord, str]]:
        """Send every batch, ``concurrency`` at a time, as the batches come; returns what was handed over."""
        per_record = getattr(self.connector, "requests_per_record", None)  # APIs without a batch endpoint
        handed: list[tuple[OutgoingRecord, str]] = []

        def run_batch(batch: list[tuple[OutgoingRecord, str]]) -> None:
            needed = getattr(self.connector, "bulk_requests", 1) if bulk else (per_record or 0) * len(batch) or 1
            linked = sum(1 for r, _ in batch if r.remote_id)
            if getattr(self.connector, "merges_and_current", None):  # the merges' reads, the values' with them
                needed += -(-linked // getattr(self.connector, "survivors_max", 100))
            elif self._reads_current():  # the reads of the records' present values alone (``_crm_edits``)
                each = getattr(self.connector, "current_each", False)  # GoHighLevel: a request per record
                needed += linked if each else -(-linked // getattr(self.connector, "current_max", 100))
            if self._over_quota(report, needed):
                return
            for part in _one_per_key(batch):
                self._push_part(report, send, part)

        # batches in flight at once: a push is bound by each round trip (and recording it) long before the
        # token bucket, which still paces every request
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = []
            for batch in batches:
                handed.extend(batch)
                futures.append(pool.submit(run_batch, batch))
            for future in futures:
                future.result()
        return handed

    def _push_part(
        self,
        report: SyncReport,
        send: Callable[[Sequence[OutgoingRecord]], list[PushResult]],
        part: list[tuple[OutgoingRecord, str]],
    ) -> None:
        """Send records with distinct match keys and record the results, in one transaction that holds a claim on
        the keys of the unlinked ones and the records of the linked ones (``store.lock_match_keys``) from before
        the check for leads linked with those keys until the results are recorded: a batch (of this run or
        another) sending the same key waits, then finds this one's link, and a pull's chunk applying one of those
        records waits for the values this batch sent. Once it holds them, the batch plans its leads again
        (``_still_due``): a lead another run linked while this one waited is sent to its record by id (a search
        may not find a record made seconds ago: Pipedrive's search index lags, and the create after it would make
        the person twice); one that run sent with its present values, or the CRM refused for good, is not sent
        again (counted unchanged): two runs of one list at once send each lead once; and the values a pull took
        from the CRM meanwhile are not written back over with those read at planning."""
        with transaction(self.database_url) as conn:
            unlinked = [record for record, _ in part if record.remote_id is None]
            linked_ids = [record.remote_id for record, _ in part if record.remote_id is not None]
            with store.lock_match_keys(conn, self.connection.name, [r.key for r in unlinked], linked_ids):
                # a lead deleted since it was read (an import undone, a list purged, merged away by `leads dedupe
                # --merge`) is not sent; the others are held until the results are recorded, a deletion or a
                # merge in flight waited for
                present = existing_leads(conn, [record.lead_id for record, _ in part], live=True)
                part = self._still_due(conn, report, [(r, d) for r, d in part if r.lead_id in present])
                unlinked = [record for record, _ in part if record.remote_id is None]
                held = self._linked_elsewhere(conn, report, unlinked)
                sendable = [replace(record, held_by=functools.partial(self._held_by, conn, record.lead_id))
                            for record, _ in part if record.lead_id not in held]  # fmt: skip
                sendable, refused, values_now = self._follow_merges(report, sendable)
                held.update(refused)
                sendable, unread = self._crm_edits(conn, report, sendable, values_now)
                held.update(unread)
                # a value the CRM won is the lead's now, and agreed: recorded as such
                decided = {record.lead_id: record for record in sendable}
                part = [(replace(r, values=d.values, unchanged=d.unchanged), values_hash(d.values))
                        if (d := decided.get(r.lead_id)) is not None and d.values != r.values else (r, digest)
                        for r, digest in part]  # fmt: skip
                # a linked record is created again when its person was deleted in the CRM: marked too
                marking = bool(sendable) and getattr(self.connector, "marks_creates", False)
                if marking:
                    sendable = self._mark_creates(conn, sendable)
                results, attempts = self._send(report, send, sendable) if sendable else ({}, {})
                results.update(held)
                attempts.update(dict.fromkeys(held, 0))
                results = self._unlinkable(conn, part, results)
                # not for a record another lead is linked to (a merge in the CRM): that lead's values stay there
                self._complete_recreated(report, send, sendable, results, attempts)
                self._write_outcomes(conn, report, part, results, attempts, present)
                if marking:
                    settled = [(r.lead_id, r.key) for r in sendable if not results[r.lead_id].transient]
                    store.clear_creates(conn, self.connection.name, settled)

    def _still_due(
        self, conn: store.Connection, report: SyncReport, part: list[tuple[OutgoingRecord, str]]
    ) -> list[tuple[OutgoingRecord, str]]:
        """The records of ``part`` planned again from their leads, links and rejects as they stand now that the
        batch holds their claims: another run of the connection may have sent or pulled them since this one
        planned. Those it sent with their present values, or the CRM refused for good, are counted unchanged
        instead of sent again; one planned unlinked that it linked goes to that record, with the fields it agreed
        left out; a value a pull took from the CRM meanwhile (a salesperson's edit, a conflict the CRM won) is sent
        as the lead has it now, not as read at planning, which wrote the CRM's newer value over with the older one.
        A lead no longer eligible (opted out meanwhile), or whose match key changed (the claim is on the old one),
        is not sent, as one deleted meanwhile: the next sync sends it as it is then."""
        late = PushPlan()
        list_id, filters = self._scope
        ids = [record.lead_id for record, _ in part]
        now = {lead["id"]: lead for lead in store.eligible_leads(conn, self.connection.name, list_id, filters, ids)}
        due: list[tuple[OutgoingRecord, str]] = []
        for record, _ in part:
            lead = now.get(record.lead_id)
            again = plan_lead(self.connection, lead, late) if lead is not None else None
            if again is not None and again[0].key.casefold() == record.key.casefold():
                due.append(again)
        store.record_outcomes(conn, self.connection.name, report.sync_id, invalid_outcomes(late.invalid))
        with self._lock:
            report.unchanged += late.unchanged + late.held + late.skipped
            report.invalid += len(late.invalid)
            self._left_out += late.unchanged + late.held + late.skipped + len(late.invalid)
        return due

    def _held_by(self, conn: store.Connection, lead_id: int, remote_id: str) -> int | None:
        """The lead other than ``lead_id`` linked to ``remote_id`` (``OutgoingRecord.held_by``), as this batch's
        transaction sees the links; asked from the connector's threads (the connection serializes them)."""
        owner = store.remote_owners(conn, self.connection.name, [remote_id]).get(remote_id)
        return owner if owner != lead_id else None

    def _follow_merges(
        self, report: SyncReport, sendable: list[OutgoingRecord]
    ) -> tuple[list[OutgoingRecord], dict[int, PushResult], dict[str, RemoteRecord] | None]:
        """The records to send, and the failures of those not to send, once the CRM said which linked records were
        merged into another since the last sync (a connector's ``merges_and_current``, at most ``survivors_max`` ids
        a request: HubSpot, Salesforce). The upsert by
        match key would create the merged-away record again, a duplicate of the person the salesperson merged: the
        lead follows the survivor instead (``OutgoingRecord.survivor``), unless another lead is linked to it, whose
        values are then kept there (``merged``, the lead not sent). The same requests read the records' present
        values of the fields ``_crm_edits`` compares, and those are returned too (None when none are compared)."""
        read = getattr(self.connector, "merges_and_current", None)
        linked = [record.remote_id for record in sendable if record.remote_id is not None]
        if read is None or not linked:
            return sendable, {}, None
        fields = self._compared(sendable)[1] if self._reads_current() else []
        size: int = getattr(self.connector, "survivors_max", 100)
        merged: dict[str, str] = {}
        present: dict[str, RemoteRecord] = {}
        try:
            for start in range(0, len(linked), size):
                ids = linked[start : start + size]
                merges, found = with_retries(functools.partial(read, ids, fields), self.retry, self.limiter,
                                             self._sleep)  # fmt: skip
                merged.update(merges)
                present.update(found)
        except (RetryableError, AllocationUsedUp) as exc:
            if isinstance(exc, AllocationUsedUp):
                self._stop(report, str(exc))
            return [], {r.lead_id: PushResult(r.lead_id, "failed", category="transient", message=str(exc))
                        for r in sendable}, None  # fmt: skip
        follow: list[OutgoingRecord] = []
        refused: dict[int, PushResult] = {}
        for record in sendable:
            survivor = merged.get(record.remote_id) if record.remote_id is not None else None
            failure = record.refused_at(self.connection.crm, survivor) if survivor else None
            if failure is not None:
                refused[record.lead_id] = failure
            else:
                follow.append(replace(record, survivor=survivor) if survivor else record)
        return follow, refused, present if fields else None

    def _reads_current(self) -> bool:
        """Whether a push reads the present values of the records it updates (``_crm_edits``): a connection that
        pulls too, through a connector that can read them (``current``, or with the merges: ``merges_and_current``)."""
        readable = any(getattr(self.connector, name, None) for name in ("current", "merges_and_current"))
        return self.connection.direction != "push" and readable

    def _compared(self, sendable: list[OutgoingRecord]) -> tuple[dict[str, OutgoingRecord], list[str]]:
        """The records whose present values in the CRM a push compares (linked, not following a merge, sending
        more than the match key), by id, and the fields it sends them."""
        match = self.connection.match_remote
        due = {r.remote_id: r for r in sendable if r.remote_id is not None and r.survivor is None
               and r.agreed is not None and any(name != match for name in r.update_values())}  # fmt: skip
        return due, sorted({name for r in due.values() for name in r.update_values() if name != match})

    def _crm_edits(
        self,
        conn: store.Connection,
        report: SyncReport,
        sendable: list[OutgoingRecord],
        present: dict[str, RemoteRecord] | None = None,
    ) -> tuple[list[OutgoingRecord], dict[int, PushResult]]:
        """The records to send once the CRM said what the linked ones hold now (a connector's ``current``, at most
        ``current_max`` records a read), and the transient failures of all when it could not say. A field the update
        would send that the CRM changed too since the last agreed value (a salesperson's edit made after the last
        pull) was overwritten unseen, no conflict recorded even under ``crm_wins``: it is a conflict the field's rule
        decides as a pull decides it (``conflicts.merge``), recorded as a pull records it. The lead takes a value the
        CRM won (written to it, and agreed: not sent); a value the lead won is sent. A push-only connection has no
        CRM values to respect: nothing is read, as for a push that updates no record. ``present``: the values read
        with the merges (``_follow_merges``), when they were."""
        match = self.connection.match_remote
        due, fields = self._compared(sendable)
        read: Callable[[Sequence[str], Sequence[str]], dict[str, RemoteRecord]] | None = getattr(
            self.connector, "current", None
        )
        if not due or self.connection.direction == "push":
            return sendable, {}
        if present is None:  # not read with the merges: read now, if the connector can
            if read is None:
                return sendable, {}
            ids, size, present = list(due), getattr(self.connector, "current_max", 100), {}
            try:
                for start in range(0, len(ids), size):
                    found = with_retries(functools.partial(read, ids[start : start + size], fields), self.retry,
                                         self.limiter, self._sleep)  # fmt: skip
                    present.update(found)
            except (RetryableError, AllocationUsedUp) as exc:
                if isinstance(exc, AllocationUsedUp):
                    self._stop(report, str(exc))
                return [], {r.lead_id: PushResult(r.lead_id, "failed", category="transient", message=str(exc))
                            for r in sendable}  # fmt: skip
        mapping = self.connection.mapping
        rules = {m.remote: self.connection.rule_for(m.remote) for m in mapping}
        by_remote = {m.remote: m.local for m in mapping}
        held = [(r, theirs, {name: theirs.values.get(name) for name in r.update_values() if name != match})
                for r in sendable if r.remote_id in due and (theirs := present.get(r.remote_id))]  # fmt: skip
        # the CRM's values as lead values, a field's in one pass; a phone in the CRM's country when it is read and
        # holds one, else in the lead's, as a pull reads it
        normalized = lead_values([{by_remote[name]: value for name, value in remote.items()} for _, _, remote in held],
                                 [r.country for r, _, _ in held])  # fmt: skip
        compared = {r.lead_id: (theirs, remote, values)
                    for (r, theirs, remote), values in zip(held, normalized, strict=True)}  # fmt: skip
        decided: list[OutgoingRecord] = []
        conflicts: list[tuple[int, str, Any, Any, str, str]] = []
        rekey: list[int] = []
        for record in sendable:
            if record.lead_id not in compared:
                decided.append(record)
                continue
            theirs, remote, values = compared[record.lead_id]
            sent = {name: value for name, value in record.update_values().items() if name != match}
            normal = as_sent(mapping, remote, values)
            result = merge(record.agreed, sent, remote, rules, record.local_updated, theirs.updated_at, normal)
            conflicts += [(record.lead_id, c.field, c.local, c.remote, c.rule, c.winner) for c in result.conflicts]
            if result.take:
                if store.write_lead_fields(conn, record.lead_id, taken(values, [by_remote[n] for n in result.take])):
                    rekey.append(record.lead_id)
                # agreed as the lead holds it now, not as the CRM writes it: the next push would send it back
                record = replace(record, values={**record.values, **{name: normal[name] for name in result.take}},
                                 unchanged=record.unchanged | set(result.take))  # fmt: skip
            decided.append(record)
        if rekey:
            refresh_keys(conn, rekey)
        store.record_conflicts(conn, report.sync_id, conflicts)
        with self._lock:
            report.conflicts += len(conflicts)
            total = report.conflicts
        store.update_run(conn, report.sync_id, conflicts=total)
        return decided, {}

    def _complete_recreated(
        self,
        report: SyncReport,
        send: Callable[[Sequence[OutgoingRecord]], list[PushResult]],
        sent: list[OutgoingRecord],
        results: dict[int, PushResult],
        attempts: dict[int, int],
    ) -> None:
        """Send every field for the linked leads whose record was gone from the CRM: their upsert sent only the
        fields changed since the last sync (``OutgoingRecord.update_values``), so the record it created again lacks
        the others, or the CRM refused to create it without its required fields (Salesforce). Still failing, that
        failure is the lead's result: its link stays on the gone record and the next sync tries again."""
        again: dict[int, OutgoingRecord] = {}
        for record in sent:
            result = results[record.lead_id]
            if record.unchanged and record.survivor is None and self._gone(record, result):
                again[record.lead_id] = replace(record, remote_id=result.remote_id, unchanged=frozenset())
            elif record.unchanged and result.category == "required_field":
                again[record.lead_id] = replace(record, unchanged=frozenset())
        if not again:
            return
        completed, tries = self._send(report, send, list(again.values()))
        for lead_id in again:
            attempts[lead_id] += tries[lead_id]
            done, first = completed[lead_id], results[lead_id]
            failed = "failed" in (done.action, first.action)
            results[lead_id] = done if failed else replace(first, remote_updated=done.remote_updated)

    def _mark_creates(self, conn: store.Connection, sendable: list[OutgoingRecord]) -> list[OutgoingRecord]:
        """``sendable`` with the time a killed push may have created each record (``created_since``), once the
        creates that may be sent are marked, committed on their own: a connector without an upsert searches before
        it creates, and its search may not find a person created seconds ago (Pipedrive's index lags), so a push
        resent after one killed between its create and its link created the person again. A linked record may be
        created too (its person was deleted in the CRM), so every record is marked, not only the unlinked ones."""
        creates = [(record.lead_id, record.key) for record in sendable]
        sent = store.creates_sent(conn, self.connection.name, creates)
        with transaction(self.database_url) as marks:
            store.mark_creates(marks, self.connection.name, creates)
        return [replace(record, created_since=s.since, created_under=s.created_under)
                if (s := sent.get(record.lead_id)) else record for record in sendable]  # fmt: skip

    def _linked_elsewhere(
        self, conn: store.Connection, report: SyncReport, unlinked: list[OutgoingRecord]
    ) -> dict[int, PushResult]:
        """Failed results, not sent, for the unlinked records whose match key a lead linked on this connection
        already has (in another list, typically): the CRM's upsert would overwrite that lead's record. The lists
        of other runs of the connection since this one started count too: they may have linked such a lead."""
        if not unlinked:
            return {}
        c = self.connection
        lists = sorted({*self._linked_lists, *store.pushing_lists(conn, c.name, report.sync_id)})
        found = store.linked_elsewhere(conn, c.name, c.match_field, [r.lead_id for r in unlinked], lists)
        return {
            lead_id: PushResult(
                lead_id, "failed", category="duplicate",
                message=f"not sent: lead {lead_id} has the {c.match_field} of lead {other.other_lead_id} (list "
                f"{other.other_list!r}), already linked through {c.name} to {c.crm} record {other.remote_id}; the "
                f"upsert would overwrite that record. Sync each list through its own connection file, or remove "
                f"the duplicate lead",
            )
            for lead_id, other in found.items()
        }  # fmt: skip

    def _over_quota(self, report: SyncReport, requests: int) -> bool:
        """Stop before a batch that would exceed the CRM's daily quota, or once the run stopped (the CRM's own
        allocation used up): what is left goes next time."""
        quota = self.connection.rate_limit.daily_quota
        with self._lock:
            if report.status != "running":
                return True
            if quota is None:
                return False
            used = self._quota_start + self._reserved
            if used + requests <= quota:
                self._reserved += requests
                return False
        self._stop(
            report,
            f"{used} of the daily quota of {quota} requests to {self.connection.crm} are used",
        )
        return True

    def _stop(self, report: SyncReport, reason: str) -> None:
        """End the push early (the first reason stays): the batches not sent yet are not sent, and go with the next
        sync."""
        with self._lock:
            if report.status == "running":
                report.status = "stopped"
                report.message = f"stopped early: {reason}; the leads not sent yet go with the next sync"

    def _send(
        self,
        report: SyncReport,
        send: Callable[[Sequence[OutgoingRecord]], list[PushResult]],
        records: list[OutgoingRecord],
    ) -> tuple[dict[int, PushResult], dict[int, int]]:
        """Send with retries; a record's result is final once it succeeded, failed permanently, or ran out. The
        CRM's API allocation used up stops the run: the records are transient failures, resent by the next sync."""
        final: dict[int, PushResult] = {}
        attempts = {record.lead_id: 0 for record in records}
        todo = records
        for attempt in range(1, self.retry.attempts + 1):
            for record in todo:
                attempts[record.lead_id] += 1
            retry_after: float | None = None
            try:
                results = send(todo)
            except RetryableError as exc:
                retry_after = exc.retry_after_s
                results = [PushResult(r.lead_id, "failed", category="transient", message=str(exc)) for r in todo]
            except AllocationUsedUp as exc:
                self._stop(report, str(exc))
                final.update({r.lead_id: PushResult(r.lead_id, "failed", category="transient", message=str(exc))
                              for r in todo})  # fmt: skip
                break
            except ConfigurationError:
                raise
            except PermanentError as exc:
                results = [PushResult(r.lead_id, "failed", category="rejected", message=str(exc)) for r in todo]
            spent = next((r for r in results if r.allowance_spent), None)
            if spent is not None:  # a connector sending one request per record met the CRM's spent allowance
                self._stop(report, str(spent.message))
                final.update({r.lead_id: r for r in results})
                break
            hints = [r.retry_after_s for r in results if r.transient and r.retry_after_s is not None]
            retry_after = max([*hints, *([retry_after] if retry_after is not None else [])], default=None)
            retry = {r.lead_id for r in results if r.transient and attempt < self.retry.attempts}
            final.update({r.lead_id: r for r in results if r.lead_id not in retry})
            todo = [record for record in todo if record.lead_id in retry]
            if not todo:
                break
            pause_for_retry(self.retry, self.limiter, self._sleep, attempt, retry_after)
        return final, attempts

    def _unlinkable(
        self, conn: store.Connection, batch: list[tuple[OutgoingRecord, str]], results: dict[int, PushResult]
    ) -> dict[int, PushResult]:
        """``results`` with the successes that cannot be linked turned into failures: the CRM answered with a
        record another lead is linked to (or two leads of the batch with one record). One link per record is
        what lets a pull find its lead; the batch is recorded rather than the run crashing on the link."""
        linked = [(record.lead_id, results[record.lead_id].remote_id or record.remote_id) for record, _ in batch
                  if results[record.lead_id].action != "failed"]  # fmt: skip
        claimed = store.remote_owners(conn, self.connection.name, [rid for _, rid in linked if rid])
        adjusted = dict(results)
        for lead_id, rid in linked:
            owner = claimed.setdefault(rid, lead_id) if rid else lead_id
            if owner != lead_id:
                adjusted[lead_id] = PushResult(
                    lead_id, "failed", category="duplicate",
                    message=f"{self.connection.crm} answered with record {rid}, which lead {owner} is linked to "
                    f"through {self.connection.name}: not linked; remove the duplicate lead",
                )  # fmt: skip
        return adjusted

    def _gone(self, record: OutgoingRecord, result: PushResult) -> tuple[str, str] | None:
        """The log's action and message for a linked lead the CRM answered with another record: its own was deleted
        or merged away there, and the upsert created it again (Pipedrive: updated the person with its match key);
        None for any other result."""
        if result.action == "failed" or record.remote_id is None or result.remote_id in (None, record.remote_id):
            return None
        if record.survivor is not None and result.remote_id == record.survivor:
            merged = f"{self.connection.crm} record {record.remote_id} was merged there into record {record.survivor}"
            return store.RELINKED, f"{merged} since the last sync: updated that record, the lead linked to it"
        gone = f"{self.connection.crm} record {record.remote_id} is gone (deleted there, or merged into another record"
        if result.action == "created":
            return store.RECREATED, f"{gone}, since the last sync): created again as record {result.remote_id}"
        match = self.connection.match_field
        return store.RELINKED, f"{gone}, since the last sync): updated record {result.remote_id}, which has its {match}"

    def _write_outcomes(
        self,
        conn: store.Connection,
        report: SyncReport,
        batch: list[tuple[OutgoingRecord, str]],
        results: dict[int, PushResult],
        attempts: dict[int, int],
        live: set[int],
    ) -> None:
        """Record the batch's results; ``live``: its leads, which the transaction holds (``existing_leads``). A
        linked lead the CRM answered with another record had its record deleted or merged away there: said so in
        the log, naming both records, and counted (``recreated``)."""
        outcomes = []
        for record, digest in batch:
            result = results[record.lead_id]
            gone = self._gone(record, result)
            action, message = gone if gone else (result.action, result.message)
            with self._lock:
                if result.action == "failed":
                    report.failed += 1
                elif result.action == "created":
                    report.created += 1
                else:
                    report.updated += 1
                if gone:
                    report.recreated += 1
            outcomes.append(
                store.Outcome(
                    record.lead_id,
                    action,
                    remote_id=result.remote_id or record.remote_id,
                    remote_updated=result.remote_updated,
                    values=record.values,
                    values_hash=digest,
                    category=result.category,
                    permanent=not result.transient,
                    message=message,
                    attempts=attempts[record.lead_id],
                    # a record created again was sent every field; a survivor of a merge, the changed ones
                    left_out=record.unchanged if gone is None or record.survivor is not None else frozenset(),
                )
            )
        store.record_outcomes(conn, self.connection.name, report.sync_id, outcomes, live)
        store.update_run(
            conn,
            report.sync_id,
            created=report.created,
            updated=report.updated,
            failed=report.failed,
            recreated=report.recreated,
        )
        self._count_requests(conn, report)

    # pull ---------------------------------------------------------------------------------------------------

    def _pull(self, report: SyncReport, list_id: int | None) -> None:
        connection = self.connection
        with connect(self.database_url) as conn:
            since = parse_time(store.pull_cursor(conn, connection.name))
            # what the pull may write to, as the run's role was checked (defs/crm/assets.py: _acting_user)
            self._pulled_lists = {*store.linked_list_ids(conn, connection.name), *([list_id] if list_id else [])}
        fields = [*connection.remote_fields, *[f for f in connection.pull_fields if f not in connection.remote_fields]]
        records = self._pull_records(fields, since)
        while True:
            chunk = [record for _, record in zip(range(PULL_CHUNK), records, strict=False)]
            if not chunk:
                return
            # the chunk's records and people: a pull or push batch of the connection meeting one of them waits
            keys = [str(key) for r in chunk if (key := r.values.get(connection.match_remote)) not in (None, "")]
            remote_ids = [record.remote_id for record in chunk]
            with (
                transaction(self.database_url) as conn,
                store.lock_match_keys(conn, connection.name, keys, remote_ids),
            ):
                store.hold_pulled_lists(conn, connection.name, remote_ids, list_id)
                self._apply_chunk(conn, report, chunk, list_id)
                newest = max(record.updated_at for record in chunk)
                store.set_pull_cursor(conn, connection.name, newest)
                store.update_run(
                    conn,
                    report.sync_id,
                    pulled=report.pulled,
                    pulled_to_survivors=report.pulled_to_survivors,
                    pull_skipped=report.pull_skipped,
                    conflicts=report.conflicts,
                )
                self._count_requests(conn, report)

    def _pull_records(self, fields: list[str], since: datetime | None) -> Iterator[RemoteRecord]:
        """The connector's pull, restarted from the last record seen when a page fails transiently."""
        attempt = 0
        while True:
            try:
                for record in self.connector.pull(fields, since):
                    yield record
                    since = record.updated_at
                    attempt = 0
                return
            except RetryableError as exc:
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise
                pause_for_retry(self.retry, self.limiter, self._sleep, attempt, exc.retry_after_s)

    def _apply_chunk(
        self, conn: store.Connection, report: SyncReport, chunk: list[RemoteRecord], list_id: int | None
    ) -> None:
        """Apply pulled records screened as an import screens its rows (``privacy.screen_staged``): an erased
        person is never created again, and the leads written for an opted-out person are flagged (then never
        pushed anywhere), with ``flag_opted_out`` as an import flags them."""
        connection = self.connection
        by_remote = {m.remote: m.local for m in connection.mapping}
        found = [(r.remote_id, r.values.get(connection.match_remote)) for r in chunk]
        stored = store.pulled_countries(conn, connection.name, list_id, connection.match_field, found)
        values = lead_values([{by_remote[m.remote]: r.values.get(m.remote) for m in connection.mapping}
                              for r in chunk], stored)  # fmt: skip
        screening = store.screen_pulled(conn, values)
        suppressed = {problem.row_number for problem in screening.suppressed}
        rekey: list[int] = []
        written = [self._apply(conn, report, record, values[i], list_id, i in suppressed, rekey)
                   for i, record in enumerate(chunk)]  # fmt: skip
        if rekey:  # the company and name keys of the chunk's leads at once: pyarrow's cost is per call
            refresh_keys(conn, rekey)
        # an opted-out identifier only in a raw value kept under custom.<field> is in no blind index to flag by
        opted = set(screening.opted_out)
        flagged = [w[1] for i, w in enumerate(written) if w is not None and opted & store.misfit_subjects(values[i])]
        flag_opted_out(conn, screening, {w[0] for w in written if w is not None}, flagged)

    def _apply(
        self,
        conn: store.Connection,
        report: SyncReport,
        record: RemoteRecord,
        values: dict[str, Any],
        list_id: int | None,
        suppressed: bool,
        rekey: list[int],
    ) -> tuple[int, int] | None:
        """Apply one pulled record; returns the list and id of the lead it created or updated (None when it wrote
        none). The record of a lead merged away (``leads dedupe --merge``) is applied to the lead it was merged
        into, as to a linked lead, its link kept on the merged-away lead (an undo of the merge gives it back), and
        counted in ``pulled_to_survivors``: it created that person's lead again. Skipped (``pull_skipped``, its
        reason in the sync log) when that lead is in a list the pull does not write to. A record no newer than the
        push that last updated it is that push's own but for the fields it left out (the link's ``left_out``) and
        the engagement fields (``pull_fields``), which it never sends: one of them unlike the agreed value or the
        lead's fact is a salesperson's edit made between the last pull and the push, taken as any change is (the
        record skipped whole, the edit waited for the record's next change in the CRM). A CRM dating changes to the
        second (``dated_to_the_second``: Pipedrive) has every field of a record of that push's second compared: it
        may hold an edit made after the push within the second.
        ``values``: the record's as lead values (``lead_values``, screened), which a new lead is given.
        ``suppressed``: the record carries an erased person's email or number. ``rekey`` gets the leads created or
        given another name or company, whose keys the chunk derives once all are written."""
        connection = self.connection
        by_remote = {m.remote: m.local for m in connection.mapping}
        remote_values = {m.remote: record.values.get(m.remote) for m in connection.mapping}
        sent = as_sent(connection.mapping, remote_values, values)  # compared: the CRM's form of ours is no edit
        lead = store.lead_for_remote(conn, connection.name, record.remote_id)
        base: dict[str, Any] | None = lead["last_values"] if lead else None
        if lead is not None and lead["remote_updated"] is not None and record.updated_at <= lead["remote_updated"]:
            # not changed since our own push (or a change already pulled): the fields the push sent hold its
            # values; one it left out unlike the agreed value, or an engagement field (never pushed) unlike the
            # lead's fact, is a salesperson's edit made before the push
            agreed = base or {}
            # a CRM dating changes to the second (Pipedrive): an edit made after the push within its second too
            tick = getattr(self.connector, "dated_to_the_second", False) and record.updated_at == lead["remote_updated"]
            compared = remote_values if tick else lead["left_out"]
            edited = {name: remote_values[name] for name in compared if name in remote_values
                      and not alike(agreed.get(name), remote_values[name], sent[name])}  # fmt: skip
            facts = {name: record.values.get(remote) for remote, name in connection.pull_fields.items()}
            if not edited and not store.facts_changed(conn, lead["id"], f"crm:{connection.name}", facts):
                return None
            remote_values = {**{name: agreed.get(name) for name in remote_values}, **edited}
            sent = {name: sent[name] if name in edited else agreed.get(name) for name in remote_values}
        linked = lead["linked_lead"] if lead else None  # the lead holding the record's link
        found: int | None = linked  # the lead the record was matched to, by its link or its match key
        if lead is None and list_id is not None:
            key = remote_values.get(connection.match_remote)
            match = store.lead_by_field(conn, list_id, connection.match_field, key) if key else None
            found = match["id"] if match else None
            lead = store.hold_lead(conn, found) if found else None  # a merge meanwhile: its survivor
        merged = lead is not None and lead["id"] != found
        if lead is not None and found is not None and merged and lead["list_id"] not in self._pulled_lists:
            message = (
                f"lead {found} was merged into lead {lead['id']}, in a list this pull does not write to"
                " (sync that list, or pull without --list if a lead of it is linked to the connection): not applied"
            )
            outcome = store.Outcome(found, store.PULL_SKIPPED, remote_id=record.remote_id, message=message)
            store.record_outcomes(conn, connection.name, report.sync_id, [outcome])
            report.pull_skipped += 1
            return None
        if lead is None:
            if list_id is None or not connection.create_new:
                return None
            if suppressed or crm_erasures.is_queued(conn, connection.name, record.remote_id):
                return None  # an erased person's record, its deletion queued: never a new lead again
            lead_id = store.create_lead(conn, list_id, {**values, "source": f"crm:{connection.name}"})
            rekey.append(lead_id)
            agreed_now = sent  # the new lead's values, as a push would send them
            written_list = list_id
            action = "pulled_created"
        else:
            lead_id = lead["id"]
            written_list = int(lead["list_id"])
            local = map_lead(lead, connection.mapping)
            rules = {m.remote: connection.rule_for(m.remote) for m in connection.mapping}
            result = merge(base, local, remote_values, rules, lead["updated_at"], record.updated_at, sent)
            took = taken(values, [by_remote[f] for f in result.take])
            if took and store.write_lead_fields(conn, lead_id, took):
                rekey.append(lead_id)
            # agreed as the lead holds it now where the CRM's value is the lead's (taken, or written another way):
            # agreed as the CRM wrote it, the lead's own form was sent back on the next push
            agreed_now = {name: sent[name] if name in result.take else local.get(name)
                          if alike(local.get(name), theirs, sent[name]) else theirs
                          for name, theirs in remote_values.items()}  # fmt: skip
            store.record_conflicts(
                conn,
                report.sync_id,
                [(lead_id, c.field, c.local, c.remote, c.rule, c.winner) for c in result.conflicts],
            )
            report.conflicts += len(result.conflicts)
            action = "pulled_updated" if result.take else "pulled_unchanged"
            if merged:
                report.pulled_to_survivors += 1
        facts = {name: record.values.get(remote) for remote, name in connection.pull_fields.items()}
        store.record_facts(conn, lead_id, f"crm:{connection.name}", facts)
        store.record_outcomes(
            conn,
            connection.name,
            report.sync_id,
            [
                store.Outcome(
                    lead_id,
                    action,
                    remote_id=record.remote_id,
                    remote_updated=record.updated_at,
                    values=agreed_now,
                    values_hash=values_hash(agreed_now),
                    linked_lead=linked if merged else None,
                    message=f"the record of lead {found}, merged into this lead" if merged else None,
                )
            ],
        )
        report.pulled += 1
        return written_list, lead_id


def _chunks(items: list[tuple[OutgoingRecord, str]], size: int) -> Iterator[list[tuple[OutgoingRecord, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _one_per_key(batch: list[tuple[OutgoingRecord, str]]) -> Iterator[list[tuple[OutgoingRecord, str]]]:
    """The batch in parts, in order, each with one record per match key (case-folded): a part is recorded before
    the next is sent, so the lead of a list that holds a person twice finds its twin's link instead of both
    creating the record at once (a Pipedrive batch sends its records in parallel, a HubSpot batch answers for
    one record per key). Almost always one part, the batch."""
    parts: list[list[tuple[OutgoingRecord, str]]] = []
    seen: list[set[str]] = []
    for record, digest in batch:
        key = record.key.casefold()
        index = next((i for i, keys in enumerate(seen) if key not in keys), len(parts))
        if index == len(parts):
            parts.append([])
            seen.append(set())
        parts[index].append((record, digest))
        seen[index].add(key)
    yield from parts


def _chunks_of(records: Iterator[tuple[OutgoingRecord, str]], size: int) -> Iterator[list[tuple[OutgoingRecord, str]]]:
    """Batches of ``size`` from a stream of records."""
    batch: list[tuple[OutgoingRecord, str]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
