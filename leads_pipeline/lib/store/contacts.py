"""Reads and writes of contact discovery: a batch's leads, their facts, per-domain mail caches, paid verdicts.

Facts are append-only rows of ``lead_facts``; the lead's visible columns (email, phone, mobile_phone,
linkedin_url) change only through ``update_lead_columns``, in the same transaction as the facts that justify
them. Paid answers are written the moment they are bought (``VerificationLedger``, ``record_paid_fact``), in
their own transaction, so a run killed afterwards still knows it paid and does not pay again.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from leads_pipeline.lib.clients.dns import MxResult
from leads_pipeline.lib.contacts.verdicts import Verdict
from leads_pipeline.lib.credits import PAID_VERIFIERS, Budget, charge, price
from leads_pipeline.lib.privacy.crypto import SEALED_FIELDS, blind_index, lead_columns, seal_details, seal_fact
from leads_pipeline.lib.store import purchases
from leads_pipeline.lib.store.batches import batch_lead_ids
from leads_pipeline.lib.store.db import ThreadConnections, connect, existing_leads

Conn = psycopg.Connection[dict[str, Any]]

LEAD_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "phone_ext",
    "mobile_phone",
    "mobile_phone_ext",
    "title",
    "company",
    "company_domain",
    "website",
    "linkedin_url",
    "city",
    "state",
    "country",
)
UPDATABLE = frozenset({"email", "phone", "phone_ext", "mobile_phone", "mobile_phone_ext", "linkedin_url"})


@dataclass(frozen=True)
class Fact:
    """One row of ``lead_facts`` to write."""

    lead_id: int
    field: str
    value: str | None
    source: str
    confidence: int
    cost: float = 0.0
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    observed_at: datetime | None = None
    """When the provider gave the answer: a reused answer keeps its lookup's time, so it ages (and expires from
    the cache) from then, not from each reuse. None: now."""


def batch_lead_chunks(conn: Conn, batch_id: str, chunk_size: int = 500) -> Iterator[list[dict[str, Any]]]:
    """The batch's live leads in chunks, by id. The member ids are read once and each chunk is fetched by its
    ids: paging through the members instead (``id > last LIMIT n``) found every member again for each page
    (0.46 s a page in a 250k-lead batch: ~4 minutes of reading for the whole batch, growing with its square), and
    no cursor stays open through a long batch either way."""
    columns = sql.SQL(", ").join(sql.Identifier("l", c) for c in LEAD_COLUMNS)
    query = sql.SQL("SELECT {columns} FROM leads l WHERE l.id = ANY(%s) AND l.deleted_at IS NULL ORDER BY l.id").format(
        columns=columns
    )
    ids = batch_lead_ids(conn, batch_id)
    for start in range(0, len(ids), chunk_size):
        rows = list(conn.execute(query, (ids[start : start + chunk_size],)))
        if rows:  # (leads deleted since the ids were read are left out)
            yield rows


def latest_facts(conn: Conn, lead_ids: Sequence[int], fields: Sequence[str]) -> dict[tuple[int, str], dict[str, Any]]:
    """The newest fact per (lead, field) among ``fields``."""
    rows = conn.execute(
        "SELECT DISTINCT ON (lead_id, field) lead_id, field, value, source, confidence, cost, batch_id, details,"
        " observed_at FROM lead_facts WHERE lead_id = ANY(%s) AND field = ANY(%s)"
        " ORDER BY lead_id, field, observed_at DESC, id DESC",
        (list(lead_ids), list(fields)),
    )
    return {(r["lead_id"], r["field"]): r for r in rows}


def twilio_answers(
    conn: Conn, lead_ids: Sequence[int], source: str, max_age: timedelta
) -> dict[tuple[int, str], tuple[dict[str, Any], datetime]]:
    """The newest fresh line-type answer of ``source`` per (lead, number) for ``lead_ids``, with when it was
    looked up: every number a lead has (phone and mobile_phone), not only its latest fact, so a rerun asks for
    none of them again."""
    rows = conn.execute(
        "SELECT lead_id, details, observed_at FROM lead_facts WHERE lead_id = ANY(%s) AND field = 'phone_line_type'"
        " AND source = %s AND observed_at > now() - %s ORDER BY observed_at, id",
        (list(lead_ids), source, max_age),
    )
    return {
        (r["lead_id"], r["details"]["number"]): (r["details"], r["observed_at"])
        for r in rows
        if r["details"].get("number")
    }


def twilio_answers_by_number(
    conn: Conn, numbers: Sequence[str], source: str, max_age: timedelta
) -> dict[str, tuple[dict[str, Any], datetime]]:
    """The newest fresh line-type answer of ``source`` per E.164 number, whichever lead it was bought for (any
    job, any list), with when it was looked up; found by the number's blind index in the facts' details (the
    number itself is sealed). An answer describes the number alone (validity, line type, carrier): passed on to
    a lead that has the number, it tells nothing of the lead or list it was bought for."""
    if not numbers:
        return {}
    rows = conn.execute(
        "SELECT details, observed_at FROM lead_facts WHERE field = 'phone_line_type' AND source = %s"
        " AND (details ->> 'number_bidx') COLLATE \"C\" = ANY(%s) AND observed_at > now() - %s"
        " ORDER BY observed_at, id",
        (source, [blind_index("phone", number) for number in numbers], max_age),
    )
    return {r["details"]["number"]: (r["details"], r["observed_at"]) for r in rows if r["details"].get("number")}


def batch_facts(conn: Conn, batch_id: str, lead_ids: Sequence[int], fields: Sequence[str]) -> list[dict[str, Any]]:
    """This batch's facts of ``fields`` for ``lead_ids`` (what a restarted run must not redo or pay again)."""
    return list(
        conn.execute(
            "SELECT lead_id, field, value, source, confidence, cost, details FROM lead_facts"
            " WHERE batch_id = %s AND field = ANY(%s) AND lead_id = ANY(%s) ORDER BY id",
            (batch_id, list(fields), list(lead_ids)),
        )
    )


def insert_facts(conn: Conn, batch_id: str | None, facts: Iterable[Fact]) -> int:
    """Write the facts; returns how many. A lead deleted since it was read gets none (``existing_leads``)."""
    facts = list(facts)
    live = existing_leads(conn, (f.lead_id for f in facts))
    rows = [
        (
            f.lead_id,
            f.field,
            seal_fact(f.field, f.value),
            f.source,
            f.confidence,
            f.cost,
            batch_id,
            Jsonb(seal_details(f.details)),
            f.observed_at,
        )
        for f in facts
        if f.lead_id in live
    ]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO lead_facts (lead_id, field, value, source, confidence, cost, batch_id, details,"
                " observed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
                rows,
            )
    return len(rows)


def update_lead_columns(conn: Conn, column: str, values: dict[int, str | None], *, overwrite: bool) -> set[int]:
    """Set ``column`` of the given leads; without ``overwrite`` only where it is empty. Returns the leads changed
    (ids, not a count: a stage writing two columns of one lead counted it twice as a lead updated).

    A lead deleted (softly: in bulk, with its list, merged away) since the batch read it is left as it was and
    not counted; its facts are kept, the record of what was bought."""
    if column not in UPDATABLE:
        raise ValueError(f"column: expected one of {sorted(UPDATABLE)}, found {column!r}")
    if not values:
        return set()
    if column in SEALED_FIELDS:
        return _update_sealed_column(conn, column, values, overwrite=overwrite)
    condition = sql.SQL("l.{col} IS DISTINCT FROM v.value").format(col=sql.Identifier(column))
    if not overwrite:
        condition = sql.SQL("l.{col} IS NULL").format(col=sql.Identifier(column))
    query = sql.SQL(
        "UPDATE leads l SET {col} = v.value, updated_at = now()"
        " FROM unnest(%s::bigint[], %s::text[]) AS v(id, value) WHERE l.id = v.id AND l.deleted_at IS NULL"
        " AND {condition} RETURNING l.id"
    ).format(col=sql.Identifier(column), condition=condition)
    return {row["id"] for row in conn.execute(query, (list(values), list(values.values())))}


def _update_sealed_column(conn: Conn, column: str, values: dict[int, str | None], *, overwrite: bool) -> set[int]:
    """``update_lead_columns`` for a sealed column: the sealed value with its blind index (and an email's
    domain); "changed" compares blind indexes, since every sealing differs. An erased person's address or number
    is never written back (``privacy.suppressed_values``)."""
    from leads_pipeline.lib.store.privacy import suppressed_values

    erased = suppressed_values(conn, column, values.values())
    values = {lead_id: value for lead_id, value in values.items() if value not in erased}
    if not values:
        return set()
    names = list(lead_columns(column, None))
    rows = [(lead_id, *lead_columns(column, value).values()) for lead_id, value in values.items()]
    index = sql.Identifier(f"{column}_bidx")
    condition = (
        sql.SQL("l.{i} IS DISTINCT FROM v.{i}").format(i=index)
        if overwrite
        else sql.SQL("l.{c} IS NULL").format(c=sql.Identifier(column))
    )
    query = sql.SQL(
        "UPDATE leads l SET {assignments}, updated_at = now()"
        " FROM unnest(%s::bigint[], {arrays}) AS v(id, {names}) WHERE l.id = v.id AND l.deleted_at IS NULL"
        " AND {condition} RETURNING l.id"
    ).format(
        assignments=sql.SQL(", ").join(sql.SQL("{n} = v.{n}").format(n=sql.Identifier(n)) for n in names),
        arrays=sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in names),
        names=sql.SQL(", ").join(map(sql.Identifier, names)),
        condition=condition,
    )
    columns = list(zip(*rows, strict=True))
    return {row["id"] for row in conn.execute(query, [list(c) for c in columns])}


def batch_cost(conn: Conn, batch_id: str, fields: Sequence[str], stage: str | None = None) -> float:
    """Credits the batch spent on facts of ``fields``, plus the shared people searches ``stage`` bought (from the
    ledger: a lead deleted since does not take back what was spent on it)."""
    row = conn.execute(
        "SELECT coalesce(sum(credits), 0) AS cost FROM credit_charges WHERE job_id = %s"
        " AND (field = ANY(%s) OR (field = 'person_match' AND stage = %s))",
        (batch_id, list(fields), stage),
    ).fetchone()
    return float(row["cost"]) if row else 0.0


# --- per-domain mail caches ------------------------------------------------------------------------------


def load_mx(conn: Conn, domains: Iterable[str]) -> dict[str, MxResult]:
    """Stored MX answers that have not expired."""
    rows = conn.execute(
        "SELECT domain, mx_hosts, fallback_a, mx_error FROM mail_domains"
        " WHERE domain = ANY(%s) AND mx_expires_at > now()",
        (sorted(set(domains)),),
    )
    return {r["domain"]: MxResult(r["domain"], tuple(r["mx_hosts"]), r["fallback_a"], r["mx_error"]) for r in rows}


def save_mx(conn: Conn, results: Iterable[MxResult], ttl: timedelta) -> None:
    rows = [(r.domain, list(r.hosts), r.fallback_a, r.error, ttl) for r in results if not r.transient]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO mail_domains (domain, mx_hosts, fallback_a, mx_error, mx_checked_at, mx_expires_at)"
                " VALUES (%s, %s, %s, %s, now(), now() + %s) ON CONFLICT (domain) DO UPDATE SET"
                " mx_hosts = EXCLUDED.mx_hosts, fallback_a = EXCLUDED.fallback_a, mx_error = EXCLUDED.mx_error,"
                " mx_checked_at = EXCLUDED.mx_checked_at, mx_expires_at = EXCLUDED.mx_expires_at",
                rows,
            )


def load_catch_all(conn: Conn, domains: Iterable[str], max_age: timedelta) -> dict[str, bool]:
    rows = conn.execute(
        "SELECT domain, catch_all FROM mail_domains WHERE domain = ANY(%s) AND catch_all IS NOT NULL"
        " AND catch_all_at > now() - %s",
        (sorted(set(domains)), max_age),
    )
    return {r["domain"]: r["catch_all"] for r in rows}


def save_catch_all(conn: Conn, verdicts: dict[str, bool]) -> None:
    if verdicts:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO mail_domains (domain, catch_all, catch_all_at) VALUES (%s, %s, now())"
                " ON CONFLICT (domain) DO UPDATE SET catch_all = EXCLUDED.catch_all, catch_all_at = now()",
                list(verdicts.items()),
            )


# --- address patterns -------------------------------------------------------------------------------------


def pattern_counts(conn: Conn) -> list[tuple[str, str, int]]:
    """(domain, pattern, known addresses) over the whole account."""
    rows = conn.execute(
        "SELECT domain, pattern, count(*) AS n FROM email_pattern_evidence GROUP BY domain, pattern ORDER BY 1, 2"
    )
    return [(r["domain"], r["pattern"], int(r["n"])) for r in rows]


def add_pattern_evidence(conn: Conn, rows: Iterable[tuple[str, str, str, str]]) -> None:
    """(domain, local part, pattern, source) rows; an address already known is not counted again."""
    batch = list(rows)
    if batch:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO email_pattern_evidence (domain, address_bidx, pattern, source) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (domain, address_bidx) DO NOTHING",
                [
                    (domain, blind_index("email", f"{local}@{domain}"), pattern, source)
                    for domain, local, pattern, source in batch
                ],
            )


# --- paid calls ---------------------------------------------------------------------------------------------


class VerificationLedger:
    """Paid email verdicts: looked up before a call, recorded (cache row + the lead's fact) right after it.

    Every call names the lead the address is verified for (by id: two leads of a chunk may be verified on one
    address, an existing one or a guess), so every paid call becomes a fact of that lead in this batch with its
    credits (the verifier's own credits in details). A verdict reused from the cache becomes a 0-cost fact of
    this batch (provenance), unless the batch already has one for that lead and address. Without a batch or a
    lead (``leads verify``, ``leads find-email``) only the cache row, keyed by address, is written. Each call
    first reserves its price in ``budget`` (against its lead's cap); ``refused`` counts the calls the budget did
    not allow.
    """

    def __init__(
        self, database_url: str, batch_id: str | None, max_age: timedelta, budget: Budget | None = None
    ) -> None:
        self.database_url = database_url
        self.batch_id = batch_id
        self.max_age = max_age
        self.budget = budget or Budget(None)
        self.refused = 0
        self._conn: Conn | None = None
        self._lock = threading.Lock()
        self._buyers = ThreadConnections(database_url)
        """The connections ``buying`` holds its locks on, one per worker, kept for its next purchase."""

    def __enter__(self) -> VerificationLedger:
        self._conn = connect(self.database_url, autocommit=True)
        return self

    def __exit__(self, *_: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._buyers.close()

    def _db(self) -> Conn:
        if self._conn is None:
            raise RuntimeError("use the ledger inside a with block")
        return self._conn

    def lookup(self, email: str, method: str, lead: int | None) -> Verdict | None:
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT confidence, details, checked_at FROM email_verifications"
                    " WHERE email_bidx = %s AND method = %s AND checked_at > now() - %s"
                    # a free "unknown" (ZeroBounce charges nothing for it) is worth asking again later
                    " AND NOT (status = 'unknown' AND cost = 0)",
                    (blind_index("email", email), method, self.max_age),
                )
                .fetchone()
            )
            if row is None:
                return None
            verdict = Verdict.from_details(row["details"], row["confidence"])
            if lead is not None and self.batch_id is not None:
                known = self._db().execute(
                    "SELECT 1 FROM lead_facts WHERE batch_id = %s AND field = 'email_status' AND source = %s"
                    " AND lead_id = %s AND details->>'email_bidx' = %s",
                    (self.batch_id, method, lead, blind_index("email", email)),
                )
                if known.fetchone() is None:  # observed when it was bought: reusing it does not make it newer
                    details = {**verdict.details(), "reused_from": row["checked_at"].isoformat()}
                    fact = Fact(
                        lead,
                        "email_status",
                        verdict.status,
                        method,
                        verdict.confidence,
                        0.0,
                        details,
                        row["checked_at"],
                    )
                    insert_facts(self._db(), self.batch_id, [fact])
            return verdict

    def reserve(self, method: str, email: str, lead: int | None) -> bool:
        """Hold the price of verifying ``email`` in the budget, against the cap of ``lead``."""
        if self.budget.reserve(price(PAID_VERIFIERS[method]), lead):
            return True
        with self._lock:
            self.refused += 1
        return False

    def release(self, method: str, email: str, lead: int | None) -> None:
        self.budget.settle(price(PAID_VERIFIERS[method]), 0.0, lead)

    @contextmanager
    def buying(self, method: str, email: str) -> Iterator[None]:
        """Hold the lock of ``method``'s verdict on ``email`` (``lib/store/purchases``) on a connection of its own
        while the caller looks again, buys and records it: ``record`` commits before the lock is let go, so a
        job waiting for it then finds the verdict stored. The connection is kept for the next purchase: opening
        one took ~10 ms, the lock ~0.3 ms."""
        with self._buyers.held() as conn, purchases.buying(conn, method, str(blind_index("email", email))):
            yield

    def suppressed(self, emails: Iterable[str]) -> set[str]:
        """The addresses among ``emails`` of people erased on request: never verified, cached or stored again."""
        from leads_pipeline.lib.store.privacy import suppressed_values

        with self._lock:
            return suppressed_values(self._db(), "email", emails)

    def record(self, verdict: Verdict, lead: int | None) -> None:
        """Store a paid verdict (the cache keeps the verifier's own cost) and its fact of ``lead``, charged in
        credits: a verifier's "unknown" is no data, so no charge."""
        item = PAID_VERIFIERS[verdict.method]
        credits, billing = charge(
            item, found=verdict.status != "unknown", provider_cost=verdict.provider_cost, provider_unit="credits"
        )
        details = {**verdict.details(), **billing}
        with self._lock, self._db().transaction():
            self._db().execute(
                "INSERT INTO email_verifications (email_bidx, method, status, confidence, cost, details)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (email_bidx, method) DO UPDATE SET"
                " status = EXCLUDED.status,"
                " confidence = EXCLUDED.confidence, cost = EXCLUDED.cost, details = EXCLUDED.details,"
                " checked_at = now()",
                (
                    blind_index("email", verdict.email),
                    verdict.method,
                    verdict.status,
                    verdict.confidence,
                    verdict.provider_cost,
                    Jsonb(seal_details(details)),
                ),
            )
            if lead is not None and self.batch_id is not None:  # outside a batch (find-email) there is no lead
                fact = Fact(lead, "email_status", verdict.status, verdict.method, verdict.confidence, credits, details)
                insert_facts(self._db(), self.batch_id, [fact])
        self.budget.settle(price(item), credits, lead)


def record_paid_fact(database_url: str, batch_id: str, fact: Fact) -> None:
    """Write one paid call's fact at once, in its own transaction (see the module docstring)."""
    with connect(database_url) as conn:
        insert_facts(conn, batch_id, [fact])


# --- Do-Not-Call lists ------------------------------------------------------------------------------------


def load_dnc(
    conn: Conn,
    numbers: set[str],
    *,
    kind: str,
    fmt: str,
    snapshot_date: date,
    path: str,
    sha256: str,
    rejected: int,
    user: str,
) -> int:
    """Apply one DNC file in the caller's transaction: a full list replaces the registry copy, additions add,
    deletions remove. Returns the list id."""
    row = conn.execute(
        "INSERT INTO dnc_lists (kind, format, snapshot_date, file_path, file_sha256, numbers, rejected, loaded_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (kind, fmt, snapshot_date, path, sha256, len(numbers), rejected, user),
    ).fetchone()
    assert row is not None
    list_id = int(row["id"])
    hashed = sorted({blind_index("phone", n) or "" for n in numbers} - {""})  # compared by blind index only
    if kind == "deletions":
        conn.execute("DELETE FROM dnc_numbers WHERE number_bidx = ANY(%s)", (hashed,))
        return list_id
    if kind == "full":
        conn.execute("DELETE FROM dnc_numbers")
    conn.execute("CREATE TEMP TABLE dnc_load (number_bidx text) ON COMMIT DROP")
    with conn.cursor().copy("COPY dnc_load (number_bidx) FROM STDIN") as copy:
        for digest in hashed:
            copy.write_row((digest,))
    conn.execute(
        "INSERT INTO dnc_numbers (number_bidx, list_id, snapshot_date) SELECT number_bidx, %s, %s FROM dnc_load"
        " ON CONFLICT (number_bidx) DO UPDATE SET list_id = EXCLUDED.list_id, snapshot_date = EXCLUDED.snapshot_date",
        (list_id, snapshot_date),
    )
    return list_id


def dnc_snapshot(conn: Conn) -> date | None:
    """The snapshot date of the newest DNC file loaded (None when none was)."""
    row = conn.execute("SELECT max(snapshot_date) AS snapshot FROM dnc_lists").fetchone()
    return row["snapshot"] if row else None


def dnc_numbers(conn: Conn, numbers: Iterable[str]) -> set[str]:
    """Which of ``numbers`` (E.164) are on the Do-Not-Call list (stored as blind indexes)."""
    by_hash = {digest: n for n in set(numbers) if (digest := blind_index("phone", n))}
    rows = conn.execute("SELECT number_bidx FROM dnc_numbers WHERE number_bidx = ANY(%s)", (sorted(by_hash),))
    return {by_hash[r["number_bidx"]] for r in rows}
