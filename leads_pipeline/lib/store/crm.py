"""CRM sync state in PostgreSQL: connections, links, runs, rejected rows, the sync log and conflicts.

``eligible_leads`` is the one query that decides which leads a push may consider: any rule about who must never
be sent to a CRM (opt-out, do-not-sell) belongs in it and nowhere else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from leads_pipeline.lib.errors import AccessDeniedError, NotFoundError
from leads_pipeline.lib.fields import CANONICAL_FIELDS, PHONE_EXTENSIONS
from leads_pipeline.lib.filters import Filter
from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.privacy.crypto import SEALED_FIELDS, blind_index, lead_columns, seal, seal_fact, seal_payload
from leads_pipeline.lib.store import access, liveness
from leads_pipeline.lib.store.audit import mask
from leads_pipeline.lib.store.db import existing_leads, key_column
from leads_pipeline.lib.store.lists import hold_lists
from leads_pipeline.lib.store.privacy import Screening, screen_staged, sellable
from leads_pipeline.lib.store.search import filters_condition

Connection = psycopg.Connection[dict[str, Any]]


@dataclass(frozen=True)
class Outcome:
    """One record's result as the store records it."""

    lead_id: int
    action: str  # created, updated, RECREATED, RELINKED, failed, invalid, pulled_created, pulled_updated,
    # pulled_unchanged, PULL_SKIPPED
    remote_id: str | None = None
    remote_updated: datetime | None = None
    values: Mapping[str, Any] | None = None
    values_hash: str | None = None
    category: str | None = None
    permanent: bool = True
    message: str | None = None
    attempts: int = 1
    left_out: frozenset[str] = frozenset()
    """CRM fields a push's update left out (``OutgoingRecord.unchanged``): still as agreed for the lead, while the
    record may hold a salesperson's edit of them made before the push, which the next pull looks for."""
    linked_lead: int | None = None
    """The lead holding the record's link when that is not ``lead_id``: a lead merged into it, whose link a pull
    applied to ``lead_id`` keeps up to date (``leads merges undo`` gives the lead its record back)."""

    @property
    def link_lead(self) -> int:
        """The lead whose link and rejects the outcome writes."""
        return self.linked_lead if self.linked_lead is not None else self.lead_id


PULL_SKIPPED: Final = "pull_skipped"
RECREATED: Final = "recreated"
"""A pushed lead whose linked record was gone from the CRM (deleted or merged there): created again."""
RELINKED: Final = "relinked"
"""A pushed lead whose linked record was gone from the CRM: it updated the record holding its match key (Pipedrive) or
the one its record was merged into (HubSpot, Salesforce) instead, and was linked to it."""
"""The action of a pulled record not applied: its lead was merged into a lead of a list the pull does not write to
(the reason in its log line's message). No link nor reject is written for it."""
_NOT_DONE: Final = frozenset({"failed", "invalid", PULL_SKIPPED})


def ensure_connection(conn: Connection, name: str, crm: str) -> None:
    conn.execute(
        "INSERT INTO crm_connections (name, crm) VALUES (%s, %s) "
        "ON CONFLICT (name) DO UPDATE SET crm = excluded.crm, updated_at = now()",
        (name, crm),
    )


def eligible_leads(
    conn: Connection,
    connection: str,
    list_id: int,
    filters: Sequence[Filter] = (),
    lead_ids: Sequence[int] | None = None,
) -> Iterator[dict[str, Any]]:
    """The live leads of ``list_id`` a push may send, each with its link and open reject for ``connection``.

    Every exclusion rule lives here: deleted leads and leads that opted out of selling or sharing their data
    (do-not-sell, issue 9) are never sent. ``filters`` (the lists' ``--where`` language, values inlined as literals
    so that a '%' never meets a placeholder) narrow the list further, and ``lead_ids`` to those leads (a push
    batch planning its leads again once it holds their claims).
    """
    where = sql.SQL("l.list_id = {} AND l.deleted_at IS NULL AND {} AND {}").format(
        sql.Literal(list_id), sellable("l"), filters_condition(filters)
    )
    if lead_ids is not None:
        where = sql.SQL("{} AND l.id = ANY({}::bigint[])").format(where, sql.Literal(list(lead_ids)))
    query = sql.SQL(
        """
        SELECT l.*, k.remote_id, k.last_hash, k.last_values, k.remote_updated,
               r.values_hash AS reject_hash, r.permanent AS reject_permanent, r.attempts AS reject_attempts
        FROM leads l
        LEFT JOIN crm_links k ON k.lead_id = l.id AND k.connection = {connection}
        LEFT JOIN crm_rejects r ON r.lead_id = l.id AND r.connection = {connection} AND r.resolved_at IS NULL
        WHERE {where}
        ORDER BY l.id
        """
    ).format(connection=sql.Literal(connection), where=where)
    with conn.cursor(name="crm_eligible") as cursor:
        cursor.itersize = 5_000
        cursor.execute(query)
        yield from cursor


def start_run(
    conn: Connection,
    connection: str,
    direction: str,
    list_id: int | None,
    user: str,
    dagster_run_id: str | None = None,
) -> int:
    """A new run of ``connection`` (part of Dagster run ``dagster_run_id``); the runs of it recorded as running
    whose lock is free (killed) are marked found interrupted first, in the same transaction, so ``pushing_lists``
    of this run and later ones leaves them out."""
    conn.execute(
        sql.SQL(
            "UPDATE crm_sync_runs SET found_interrupted_at = now() WHERE connection = %s AND status = 'running'"
            " AND finished_at IS NULL AND found_interrupted_at IS NULL AND NOT {alive}"
        ).format(alive=liveness.alive(liveness.SYNC_RUN, sql.SQL("id"))),
        (connection,),
    )
    row = conn.execute(
        "INSERT INTO crm_sync_runs (connection, direction, list_id, started_by, dagster_run_id)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (connection, direction, list_id, user, dagster_run_id),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def update_run(conn: Connection, run_id: int, **counts: Any) -> None:
    """Set counters and status of a run (``status``, ``message``, ``finished=True`` for the end). A message
    quoting a CRM's error has its addresses and numbers masked: run records are kept in clear."""
    finished = counts.pop("finished", False)
    if isinstance(counts.get("message"), str):
        counts["message"] = mask(counts["message"])
    assignments: list[sql.Composable] = [sql.SQL("{} = %s").format(sql.Identifier(key)) for key in counts]
    if finished:
        assignments.append(sql.SQL("finished_at = now()"))
    if not assignments:
        return
    conn.execute(
        sql.SQL("UPDATE crm_sync_runs SET {} WHERE id = %s").format(sql.SQL(", ").join(assignments)),
        [*counts.values(), run_id],
    )


def record_outcomes(
    conn: Connection, connection: str, run_id: int, outcomes: Iterable[Outcome], live: Collection[int] | None = None
) -> None:
    """Write a batch's results: links for successes (resolving their rejects), rejects for failures, the log.
    A lead deleted while it was sent (an import undone, a list purged) gets no link nor reject, only its log
    line: they would fail the whole batch's on its lead check (``existing_leads``). ``live``: the leads of
    ``outcomes`` the transaction already holds (``existing_leads``, as a push batch holds its leads from before
    it sends), not looked up again; None, those that exist are looked up, and held."""
    done = [o for o in outcomes]
    if live is None:
        live = existing_leads(conn, (o.link_lead for o in done))
    good = [o for o in done if o.action not in _NOT_DONE and o.link_lead in live]
    bad = [o for o in done if o.action in ("failed", "invalid") and o.link_lead in live]
    with conn.cursor() as cursor:
        if good:
            cursor.execute(  # a deleted lead's link gives its record up to the live lead the CRM matched it to
                "DELETE FROM crm_links k USING leads l WHERE k.connection = %s AND k.remote_id = ANY(%s)"
                " AND l.id = k.lead_id AND l.deleted_at IS NOT NULL AND NOT k.lead_id = ANY(%s)",
                (connection, [o.remote_id for o in good if o.remote_id], [o.link_lead for o in good]),
            )
            cursor.executemany(
                """
                INSERT INTO crm_links (lead_id, connection, remote_id, remote_updated, last_hash, last_values,
                                       left_out)
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (lead_id, connection) DO UPDATE SET remote_id = excluded.remote_id,
                    remote_updated = coalesce(excluded.remote_updated, crm_links.remote_updated),
                    last_hash = excluded.last_hash, last_values = excluded.last_values,
                    left_out = excluded.left_out, synced_at = now()
                """,
                [
                    (
                        o.link_lead,
                        connection,
                        o.remote_id,
                        o.remote_updated,
                        o.values_hash,
                        Jsonb(seal_payload(dict(o.values or {}))),
                        sorted(o.left_out),
                    )
                    for o in good
                ],
            )
            cursor.execute(
                "UPDATE crm_rejects SET resolved_at = now() WHERE connection = %s AND lead_id = ANY(%s) "
                "AND resolved_at IS NULL",
                (connection, [o.link_lead for o in good]),
            )
        if bad:
            cursor.executemany(
                """
                INSERT INTO crm_rejects (lead_id, connection, sync_id, category, permanent, message, values_hash,
                                         attempts)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (lead_id, connection) DO UPDATE SET sync_id = excluded.sync_id,
                    category = excluded.category, permanent = excluded.permanent, message = excluded.message,
                    values_hash = excluded.values_hash, last_at = now(), resolved_at = NULL,
                    attempts = CASE WHEN crm_rejects.resolved_at IS NULL
                                    THEN crm_rejects.attempts + excluded.attempts ELSE excluded.attempts END
                """,
                [
                    (
                        o.lead_id,
                        connection,
                        run_id,
                        o.category or "rejected",
                        o.permanent,
                        seal(o.message or "") if o.message else "",
                        o.values_hash,
                        o.attempts,
                    )
                    for o in bad
                ],
            )
        if done:
            cursor.executemany(
                "INSERT INTO crm_sync_log (sync_id, lead_id, remote_id, action, category, message, attempts) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                # messages can quote the record's email or number: sealed
                [(run_id, o.lead_id, o.remote_id, o.action, o.category, seal(o.message), o.attempts) for o in done],
            )


@dataclass(frozen=True)
class LinkedElsewhere:
    """A live lead already linked on the connection whose match key an unlinked lead about to be pushed has."""

    lead_id: int
    other_lead_id: int
    other_list: str
    remote_id: str


def linked_elsewhere(
    conn: Connection, connection: str, match_field: str, lead_ids: Sequence[int], lists: Sequence[int]
) -> dict[int, LinkedElsewhere]:
    """Of ``lead_ids`` (leads without a link), those whose ``match_field`` value a lead of ``lists`` already linked
    on ``connection`` has: the CRM's upsert by that key would overwrite the other lead's record, which one link
    per record cannot hold. The lead's id as key (an external id field) never collides."""
    if match_field == "id" or not lead_ids or not lists:
        return {}
    same = _same_key(match_field)
    if same is None:
        return {}
    query = sql.SQL(
        """
        SELECT DISTINCT ON (s.id) s.id AS lead_id, o.id AS other_lead_id, li.name AS other_list, k.remote_id
        FROM leads s
        JOIN leads o ON o.list_id = ANY(%(lists)s) AND o.id <> s.id AND o.deleted_at IS NULL AND {same}
        JOIN crm_links k ON k.lead_id = o.id AND k.connection = %(connection)s
        JOIN lists li ON li.id = o.list_id
        WHERE s.id = ANY(%(leads)s)
        ORDER BY s.id, o.id
        """
    ).format(same=same)
    rows = conn.execute(query, {"lists": list(lists), "connection": connection, "leads": list(lead_ids)})
    return {int(r["lead_id"]): LinkedElsewhere(int(r["lead_id"]), int(r["other_lead_id"]), r["other_list"],
                                               r["remote_id"]) for r in rows}  # fmt: skip


def _same_key(match_field: str) -> sql.Composable | None:
    """SQL: leads ``s`` and ``o`` have the same (non-empty) match key, compared as ``lead_by_field`` compares it."""
    if match_field in SEALED_FIELDS:  # through the blind index, bytewise so that the list's key index serves it
        column = f"{match_field}_bidx"
        return sql.SQL("{} = {}").format(key_column(column, "o"), key_column(column, "s"))
    if match_field.startswith("custom."):
        name = sql.Literal(match_field[len("custom.") :])
        return sql.SQL("o.custom ->> {name} = s.custom ->> {name}").format(name=name)
    if match_field in CANONICAL_FIELDS:
        return sql.SQL("lower(o.{c}::text) = lower(s.{c}::text)").format(c=sql.Identifier(match_field))
    return None


@contextmanager
def lock_match_keys(
    conn: Connection, connection: str, keys: Sequence[str], remote_ids: Sequence[str] = ()
) -> Iterator[None]:
    """Hold, until the block ends, a claim on each match key of ``keys`` (case-folded, as the CRMs compare them)
    and each CRM record of ``remote_ids`` on ``connection``; the transaction must outlive the block.

    A push batch claims the keys of its unlinked leads and the records of its linked ones from before it checks
    for leads linked with those keys until its results are recorded; a pull's chunk claims the keys and records
    it applies. Two batches or chunks with one key or record (of one run, or of two runs of the connection at
    once) go one after the other, so the second finds the first's links and leads instead of creating a second
    CRM record or lead, or racing the first to one record; those with other keys go on beside it. The claims are
    rows of ``crm_key_claims`` (sql/049), inserted in one order (so batches never deadlock) and deleted at the
    end of the block, not advisory locks: a Bulk API job's 10,000 keys would fill the server's shared lock
    table, and a lock on the whole connection held every other sync of it back while the job ran."""
    ids = sorted({_lock_id(connection, key.casefold()) for key in keys}
                 | {_lock_id(connection, "record", remote_id) for remote_id in remote_ids})  # fmt: skip
    claim = "INSERT INTO crm_key_claims (connection, key_hash) SELECT %s, k FROM unnest(%s::bigint[]) k ORDER BY k"
    conn.execute(claim, (connection, ids))  # waits on the unique index for a batch that claimed a key first
    yield
    conn.execute("DELETE FROM crm_key_claims WHERE connection = %s AND key_hash = ANY(%s)", (connection, ids))


@dataclass(frozen=True)
class CreatesSent:
    """The marks (``mark_creates``) a record's resend must look behind: those of its match key, whichever lead made
    them, and those its lead made under a key it no longer has (its email changed after a killed push)."""

    connection: str
    since: datetime
    """When the first of those creates was sent."""
    key_hashes: frozenset[int]

    def created_under(self, key: str) -> bool:
        """Whether a CRM record with match key ``key`` may be one of those creates."""
        return _lock_id(self.connection, key.casefold()) in self.key_hashes


def creates_sent(conn: Connection, connection: str, records: Sequence[tuple[int, str]]) -> dict[int, CreatesSent]:
    """Of ``records`` (lead id, match key compared case-folded), those with a create a push marked without
    recording the outcome since, under the record's key or by its lead under another key, by lead id. A mark
    keeps only the key's hash: a record made under a key the lead no longer has is known by its key's hash."""
    keys = {lead_id: _lock_id(connection, key.casefold()) for lead_id, key in records}
    rows = conn.execute(
        "SELECT key_hash, lead_id, sent_at FROM crm_creates_sent WHERE connection = %s"
        " AND (key_hash = ANY(%s) OR lead_id = ANY(%s))",
        (connection, list(keys.values()), list(keys)),
    ).fetchall()
    found: dict[int, CreatesSent] = {}
    for lead_id, key in keys.items():
        marks = [row for row in rows if row["key_hash"] == key or row["lead_id"] == lead_id]
        if marks:
            since = min(row["sent_at"] for row in marks)
            found[lead_id] = CreatesSent(connection, since, frozenset(row["key_hash"] for row in marks))
    return found


def mark_creates(conn: Connection, connection: str, creates: Sequence[tuple[int, str]]) -> None:
    """Mark that records for ``creates`` (lead id, match key) may be created on ``connection`` (sql/079), in a
    transaction committed before they are sent: a push killed before it records its links leaves the marks for
    the next. An older mark of a key keeps its time: the create it marked may have landed. A mark names its lead
    (sql/091) so that it goes with the lead, and with the person's erasure (``privacy.registry``): the lead that
    marked the key last, whose resend the mark is kept for (``clear_creates`` clears a lead's marks)."""
    marks = {_lock_id(connection, key.casefold()): lead_id for lead_id, key in creates}
    conn.execute(
        "INSERT INTO crm_creates_sent AS c (connection, key_hash, lead_id) SELECT %s, m.k, m.l"
        " FROM unnest(%s::bigint[], %s::bigint[]) m(k, l) ORDER BY m.k"
        " ON CONFLICT (connection, key_hash) DO UPDATE SET lead_id = EXCLUDED.lead_id"
        " WHERE c.lead_id <> EXCLUDED.lead_id",
        (connection, list(marks), list(marks.values())),
    )


def clear_creates(conn: Connection, connection: str, creates: Sequence[tuple[int, str]]) -> None:
    """The creates of ``creates`` (lead id, match key) are settled (linked, or refused for good): the marks of
    their keys go, in the transaction that records it, and so do the other marks made for those leads: keys a
    lead had when a push was killed and no longer has (its email changed), which its resends never send again."""
    ids = sorted({_lock_id(connection, key.casefold()) for _, key in creates})
    leads = sorted({lead_id for lead_id, _ in creates})
    conn.execute(
        "DELETE FROM crm_creates_sent WHERE connection = %s AND (key_hash = ANY(%s) OR lead_id = ANY(%s))",
        (connection, ids, leads),
    )


def _lock_id(*parts: str) -> int:
    """A claim's key: a match key or record of a CRM connection, hashed; a collision only serializes more."""
    digest = hashlib.blake2b("\0".join(("crm", *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def pushing_lists(conn: Connection, connection: str, run_id: int) -> list[int]:
    """The lists of the other runs of ``connection`` that were running at some point since run ``run_id``
    started: leads of theirs may have been linked since that run read the linked lists. A killed run never
    finishes; once a run started no later than ``run_id`` found it interrupted (``start_run``), all it linked
    was committed before ``run_id`` read the linked lists, and it no longer counts (it counted for good before)."""
    rows = conn.execute(
        "SELECT DISTINCT o.list_id FROM crm_sync_runs r JOIN crm_sync_runs o ON o.connection = r.connection"
        " AND o.id <> r.id AND o.list_id IS NOT NULL AND (o.finished_at >= r.started_at"
        " OR o.found_interrupted_at > r.started_at OR o.finished_at IS NULL AND o.found_interrupted_at IS NULL)"
        " WHERE r.id = %s AND r.connection = %s",
        (run_id, connection),
    )
    return [int(r["list_id"]) for r in rows]


def remote_owners(conn: Connection, connection: str, remote_ids: Sequence[str]) -> dict[str, int]:
    """CRM record id -> the live lead linked to it on ``connection``, for those of ``remote_ids`` that are linked
    (a deleted lead's link does not hold its record: the same person imported again takes it over)."""
    if not remote_ids:
        return {}
    rows = conn.execute(
        "SELECT k.remote_id, k.lead_id FROM crm_links k JOIN leads l ON l.id = k.lead_id"
        " WHERE k.connection = %s AND k.remote_id = ANY(%s) AND l.deleted_at IS NULL",
        (connection, list(remote_ids)),
    )
    return {r["remote_id"]: int(r["lead_id"]) for r in rows}


_SCREENED: Final = ("email", "phone", "mobile_phone")


def misfit_subjects(row: Mapping[str, Any]) -> set[str]:
    """The keyed hashes (blind indexes, so suppression and opt-out hashes) of the identifiers written in the raw
    email and phone values of a pulled record that did not normalize and are kept under ``custom.<field>``
    (two addresses in one field, a number with a note): the person is in them even without a blind index."""
    sealer = crypto.sealer()
    return {subject for f in _SCREENED if (raw := _text(row.get(f"custom.{f}"))) for subject in sealer.subjects(raw)}


def screen_pulled(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> Screening:
    """The import's screening (``privacy.screen_staged``) of pulled records as lead values, in the current
    transaction: their blind indexes are staged (row number = position in ``rows``) and screened against the
    suppression and opt-out lists, so a pull keeps out and flags exactly whom an import would. The identifiers
    in a raw value kept under ``custom.<field>`` (``misfit_subjects``) are staged as rows of the same number."""
    conn.execute(
        "CREATE TEMP TABLE crm_pulled (row_number integer, email_bidx text, phone_bidx text, mobile_phone_bidx text)"
        " ON COMMIT DROP"
    )
    staged = [(i, *(blind_index(f, _text(row.get(f))) for f in _SCREENED)) for i, row in enumerate(rows)]
    # a hash is compared whatever its column: the column only names the reported problem
    staged += [(i, subject, None, None) for i, row in enumerate(rows) for subject in sorted(misfit_subjects(row))]
    conn.cursor().executemany("INSERT INTO crm_pulled VALUES (%s, %s, %s, %s)", staged)
    screening = screen_staged(conn, "crm_pulled")
    conn.execute("DROP TABLE crm_pulled")
    return screening


def lead_for_remote(conn: Connection, connection: str, remote_id: str) -> dict[str, Any] | None:
    """The live lead a CRM record's link leads to (``hold_lead``: its linked lead, or the lead that one was merged
    into), held, with its link's base values and ``linked_lead``, the lead holding the link."""
    link = conn.execute(
        "SELECT lead_id AS linked_lead, remote_id, last_values, remote_updated, left_out FROM crm_links"
        " WHERE connection = %s AND remote_id = %s",
        (connection, remote_id),
    ).fetchone()
    lead = hold_lead(conn, link["linked_lead"]) if link is not None else None
    return {**lead, **link} if lead is not None and link is not None else None


_MERGED_INTO: Final = """
    WITH RECURSIVE chain (id, merged_into, deleted_at) AS (
        SELECT id, merged_into, deleted_at FROM leads WHERE id = %s
        UNION SELECT l.id, l.merged_into, l.deleted_at FROM leads l JOIN chain c ON l.id = c.merged_into
    )
    SELECT id FROM chain WHERE deleted_at IS NULL
"""
"""The live end of a lead's chain of merges: the lead if live, else the lead it was merged into, and so on."""


def hold_lead(conn: Connection, lead_id: int) -> dict[str, Any] | None:
    """The lead, or the live lead it was merged into (through chains of merges), held (for no key update) until
    the transaction ends; None when it and its survivor are deleted. A pulled record's lead read unheld was
    written after a merge committed meanwhile: its values went into the lead merged away, not the survivor. A
    merge (or its undo) in flight is waited for and then followed; the merged-away lead is held too (for share),
    so that the merge is not undone before the pull's values are written."""
    while True:
        end = conn.execute(_MERGED_INTO, (lead_id,)).fetchone()
        if end is None:
            return None
        lead = conn.execute(
            "SELECT * FROM leads WHERE id = %s AND deleted_at IS NULL FOR NO KEY UPDATE", (end["id"],)
        ).fetchone()
        if lead is not None and lead["id"] != lead_id:
            conn.execute("SELECT 1 FROM leads WHERE id = %s FOR SHARE", (lead_id,))
            still = conn.execute(_MERGED_INTO, (lead_id,)).fetchone()
            lead = lead if still is not None and still["id"] == lead["id"] else None
        if lead is not None:
            return lead


_LINKED_CHAINS: Final = """
    WITH RECURSIVE chain (remote_id, id, merged_into, deleted_at, list_id, country) AS (
        SELECT k.remote_id, l.id, l.merged_into, l.deleted_at, l.list_id, l.country
        FROM crm_links k JOIN leads l ON l.id = k.lead_id WHERE k.connection = %s AND k.remote_id = ANY(%s)
        UNION SELECT c.remote_id, l.id, l.merged_into, l.deleted_at, l.list_id, l.country
        FROM leads l JOIN chain c ON l.id = c.merged_into
    )
"""
"""Each linked record's lead and the leads it was merged into, in turn (``hold_lead``), as ``chain``."""

_PULLED_LISTS: Final = _LINKED_CHAINS + "SELECT DISTINCT list_id FROM chain"
"""The lists of the leads linked to the records and of the leads they were merged into."""


def hold_pulled_lists(conn: Connection, connection: str, remote_ids: Sequence[str], list_id: int | None) -> None:
    """Hold (``hold_lists``, in id order) the lists whose leads a pull's chunk of ``remote_ids`` may write or
    hold: ``list_id`` (where it matches and creates leads) and those of the leads linked to the records and of
    the leads they were merged into. A merge holds its leads' lists before its leads (``hold_lists_of``): a
    chunk that held its leads one by one in the CRM's order met a merge holding the same leads in id order, each
    waited for the other's lead and PostgreSQL aborted one of them with a deadlock error. Holding the lists
    first, they take turns. (A merge committed while the lists are read can lead a record to a survivor in a
    list not held; a merge holding leads of that list holds none of the chunk's others, so it is not waited for
    in a circle.)"""
    found = conn.execute(_PULLED_LISTS, (connection, list(remote_ids)))
    hold_lists(conn, {int(r["list_id"]) for r in found} | ({list_id} if list_id is not None else set()))


_LINKED_COUNTRIES: Final = _LINKED_CHAINS + "SELECT remote_id, country FROM chain WHERE deleted_at IS NULL"
"""The country of the live lead each linked record leads to (``lead_for_remote``: its linked lead, or the lead that
one was merged into)."""


def pulled_countries(
    conn: Connection, connection: str, list_id: int | None, match_field: str, records: Sequence[tuple[str, Any]]
) -> list[str | None]:
    """The country stored on the lead each pulled record (its id and match key) is applied to, as the chunk finds
    it before applying any: its link's live lead (``lead_for_remote``), else the list's lead with its match key
    (``lead_by_field``); None for a record that makes a new lead. A number the CRM writes without its country
    code is read in it (``inbound.lead_values``). Read unheld: the chunk holds its lists and match keys, so only
    its own records change these leads before they are applied (a record matching a lead an earlier one of the
    chunk made is read as a new lead's, as before)."""
    linked = {
        r["remote_id"]: r["country"] for r in conn.execute(_LINKED_COUNTRIES, (connection, [i for i, _ in records]))
    }
    matched = [
        i for i, (remote_id, key) in enumerate(records) if list_id is not None and remote_id not in linked and key
    ]
    leads = leads_by_field(conn, list_id, match_field, [records[i][1] for i in matched]) if list_id is not None else []
    by_key = {i: lead["country"] for i, lead in zip(matched, leads, strict=True) if lead is not None}
    return [linked[remote_id] if remote_id in linked else by_key.get(i) for i, (remote_id, _) in enumerate(records)]


def lead_by_field(conn: Connection, list_id: int, field: str, value: Any) -> dict[str, Any] | None:
    """A live lead of the list whose ``field`` equals ``value`` (case-insensitive for text), if any."""
    return leads_by_field(conn, list_id, field, [value])[0]


def leads_by_field(conn: Connection, list_id: int, field: str, values: Sequence[Any]) -> list[dict[str, Any] | None]:
    """:func:`lead_by_field` of each of ``values`` in one query, each value looked up by the list's key index as
    alone: a pull's chunk finds the leads of its records at once (a query a record took 127 ms of a chunk of 200
    new records, one 3 ms)."""
    if not values or (field != "id" and field not in CANONICAL_FIELDS):
        return [None] * len(values)
    keys: list[str | None]
    same: sql.Composable
    if field == "id":
        keys, same = [str(v) for v in values], sql.SQL("l.id::text = v.key")
    elif field in SEALED_FIELDS:  # sealed: matched through the blind index
        keys = [blind_index(field, str(v)) for v in values]
        same = sql.SQL("{} = v.key").format(key_column(f"{field}_bidx", "l"))
    else:
        keys, same = [str(v) for v in values], sql.SQL("lower(l.{}::text) = lower(v.key)").format(sql.Identifier(field))
    query = sql.SQL(
        "SELECT v.n AS wanted_at, m.* FROM unnest(%s::text[]) WITH ORDINALITY AS v(key, n) CROSS JOIN LATERAL"
        " (SELECT l.* FROM leads l WHERE l.list_id = %s AND l.deleted_at IS NULL AND {} ORDER BY l.id LIMIT 1) m"
    ).format(same)
    found: list[dict[str, Any] | None] = [None] * len(values)
    for row in conn.execute(query, (keys, list_id)):
        lead = dict(row)
        found[int(lead.pop("wanted_at")) - 1] = lead
    return found


_WRITTEN: Final = frozenset({*CANONICAL_FIELDS, *PHONE_EXTENSIONS.values()})
"""The lead columns a pull writes (``custom.X`` aside): the fields and the phones' extensions."""
_KEYED: Final = frozenset({"first_name", "last_name", "company"})
"""The fields the company and name keys are derived from."""


def write_lead_fields(conn: Connection, lead_id: int, changes: Mapping[str, Any]) -> bool:
    """Set lead fields (``custom.X`` goes into the custom JSON object); ``updated_at`` moves. True when a field the
    company and name keys derive from changed: the caller derives them again (``refresh_keys``) once for all the
    leads it wrote, as the import does (pyarrow's cost is per call: a pull paid it for every lead)."""
    columns = _stored({k: v for k, v in changes.items() if k in _WRITTEN})
    custom = {k[len("custom.") :]: v for k, v in changes.items() if k.startswith("custom.")}
    assignments: list[sql.Composable] = [sql.SQL("{} = %s").format(sql.Identifier(k)) for k in columns]
    params: list[Any] = list(columns.values())
    if custom:
        assignments.append(sql.SQL("custom = custom || %s"))
        params.append(Jsonb(custom))
    assignments.append(sql.SQL("updated_at = now()"))
    conn.execute(
        sql.SQL("UPDATE leads SET {} WHERE id = %s").format(sql.SQL(", ").join(assignments)), [*params, lead_id]
    )
    return bool(_KEYED.intersection(changes))


def _stored(columns: Mapping[str, Any]) -> dict[str, Any]:
    """Lead column values as stored: the sealed fields sealed, with their blind indexes."""
    stored: dict[str, Any] = {}
    for name, value in columns.items():
        stored.update(lead_columns(name, _text(value)) if name in SEALED_FIELDS else {name: value})
    return stored


def create_lead(conn: Connection, list_id: int, values: Mapping[str, Any]) -> int:
    """A new lead of the list; its company and name keys, by which imports and dedupe find it, are for the caller to
    derive (``refresh_keys``) once for all the leads it wrote, as for ``write_lead_fields``."""
    columns = _stored({k: v for k, v in values.items() if k in _WRITTEN})
    custom = {k[len("custom.") :]: v for k, v in values.items() if k.startswith("custom.")}
    names = [*columns, "list_id", "custom"]
    query = sql.SQL("INSERT INTO leads ({}) VALUES ({}) RETURNING id").format(
        sql.SQL(", ").join(sql.Identifier(n) for n in names), sql.SQL(", ").join(sql.Placeholder() * len(names))
    )
    row = conn.execute(query, [*columns.values(), list_id, Jsonb(custom)]).fetchone()
    assert row is not None
    return int(row["id"])


def record_conflicts(conn: Connection, run_id: int, rows: Sequence[tuple[int, str, Any, Any, str, str]]) -> None:
    """(lead, CRM field, local value, CRM value, rule, winner) per conflict."""
    if rows:
        conn.cursor().executemany(
            "INSERT INTO crm_conflicts (sync_id, lead_id, field, local_value, remote_value, rule, winner) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(run_id, lead, f, seal(_text(a)), seal(_text(b)), rule, winner) for lead, f, a, b, rule, winner in rows],
        )


def record_facts(conn: Connection, lead_id: int, source: str, facts: Mapping[str, Any]) -> None:
    """Engagement values read from the CRM (lifecycle stage, last activity) as lead facts scoring can use."""
    rows = [
        (lead_id, name, seal_fact(name, _text(value)), source)
        for name, value in facts.items()
        if value not in (None, "")
    ]
    if rows:
        conn.cursor().executemany(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence) VALUES (%s, %s, %s, %s, 100)", rows
        )


def facts_changed(conn: Connection, lead_id: int, source: str, facts: Mapping[str, Any]) -> bool:
    """Whether ``record_facts`` would record a value of ``facts`` other than the lead's newest of ``source`` for that
    field: a pulled record the pull takes for a push's own may still carry a salesperson's change of an engagement
    field (``pull_fields``), which no push sends."""
    values = {name: _text(value) for name, value in facts.items() if value not in (None, "")}
    if not values:
        return False
    rows = conn.execute(
        "SELECT DISTINCT ON (field) field, value FROM lead_facts WHERE lead_id = %s AND source = %s"
        " AND field = ANY(%s) ORDER BY field, observed_at DESC, id DESC",
        (lead_id, source, list(values)),
    )
    newest = {row["field"]: row["value"] for row in rows}
    return any(newest.get(name) != value for name, value in values.items())


def pull_cursor(conn: Connection, connection: str) -> str | None:
    row = conn.execute("SELECT pull_cursor FROM crm_connections WHERE name = %s", (connection,)).fetchone()
    return row["pull_cursor"] if row else None


def set_pull_cursor(conn: Connection, connection: str, cursor: datetime) -> None:
    """Move the pull cursor forward to ``cursor``, never back: two pulls of one connection at once each write
    the time of the newest record of their chunk, and the one committing last may hold older records; written
    as is, its time moved the cursor back and the next pull read those records again. Compared as instants,
    not as text (the CRMs' times carry offsets)."""
    conn.execute(
        "UPDATE crm_connections SET pull_cursor = %s, updated_at = now() "
        "WHERE name = %s AND (pull_cursor IS NULL OR pull_cursor::timestamptz < %s)",
        (cursor.isoformat(), connection, cursor),
    )


def quota_used(conn: Connection, connection: str, today: date) -> int:
    row = conn.execute("SELECT quota_day, quota_used FROM crm_connections WHERE name = %s", (connection,)).fetchone()
    return int(row["quota_used"]) if row and row["quota_day"] == today else 0


def add_quota(conn: Connection, connection: str, today: date, requests: int) -> None:
    conn.execute(
        "UPDATE crm_connections SET quota_used = CASE WHEN quota_day = %s THEN quota_used + %s ELSE %s END, "
        "quota_day = %s WHERE name = %s",
        (today, requests, requests, today, connection),
    )


def list_runs(
    conn: Connection, connection: str | None = None, limit: int = 50, *, user: str | None = None
) -> list[dict[str, Any]]:
    """Runs newest first; with ``user``, only the runs of lists the user can read and the runs they started."""
    readable = None if user is None else access.readable_list_ids(conn, user)
    query = sql.SQL(
        "SELECT r.*, li.name AS list_name, {alive} AS alive FROM crm_sync_runs r"
        " LEFT JOIN lists li ON li.id = r.list_id WHERE (%(connection)s::text IS NULL OR r.connection = %(connection)s)"
        " AND (%(readable)s::bigint[] IS NULL OR r.list_id = ANY(%(readable)s) OR r.started_by = %(user)s)"
        " ORDER BY r.id DESC LIMIT %(limit)s"
    ).format(alive=liveness.alive(liveness.SYNC_RUN, sql.SQL("r.id")))
    rows = conn.execute(query, {"connection": connection, "readable": readable, "user": user, "limit": limit})
    return [_interrupted(row) for row in rows]


def killed_dagster_runs(conn: Connection) -> list[str]:
    """The Dagster runs of the interrupted sync runs (``_interrupted``) not yet reported ended: their process is
    gone, so Dagster, which that process never told, may still show them started."""
    rows = conn.execute(
        sql.SQL(
            "SELECT dagster_run_id FROM crm_sync_runs WHERE status = 'running' AND finished_at IS NULL"
            " AND dagster_run_id IS NOT NULL AND NOT dagster_run_ended AND NOT {alive}"
        ).format(alive=liveness.alive(liveness.SYNC_RUN, sql.SQL("id")))
    )
    return [row["dagster_run_id"] for row in rows]


def dagster_runs_ended(conn: Connection, dagster_run_ids: Sequence[str]) -> None:
    """The ``killed_dagster_runs`` now reported ended to Dagster."""
    conn.execute(
        "UPDATE crm_sync_runs SET dagster_run_ended = true WHERE dagster_run_id = ANY(%s)", (list(dagster_run_ids),)
    )


def _interrupted(row: dict[str, Any]) -> dict[str, Any]:
    """The run with status ``interrupted`` if it is recorded as running but no process holds its lock any more
    (killed outright, the machine went down): it will never end on its own. Its counts are what it committed."""
    row["status"] = liveness.status(row["status"], ("running",), row.pop("alive"))
    return row


RUNS_HINT: Final = "`leads sync history` lists yours"
"""Where the refusal of a sync run that is not found or not shared points the user."""


def require_run_readable(conn: Connection, run: Mapping[str, Any], user: str) -> None:
    """A run's records are for readers of its list; a run without a list only for whoever started it."""
    subject = f"sync run {run['id']}"
    if run["list_id"] is not None:
        access.require(
            conn, run["list_id"], user, "viewer", f"reading its {subject}", write=False, subject=subject, hint=RUNS_HINT
        )
    elif run["started_by"] != user:  # a pull without a list: only whoever started it
        raise AccessDeniedError(access.not_shared(subject, RUNS_HINT))


def linked_list_ids(conn: Connection, connection: str) -> list[int]:
    """The lists holding live leads linked to the connection: what a pull without a list may write to."""
    rows = conn.execute(
        "SELECT DISTINCT l.list_id FROM crm_links k JOIN leads l ON l.id = k.lead_id"
        " WHERE k.connection = %s AND l.deleted_at IS NULL ORDER BY l.list_id",
        (connection,),
    )
    return [int(r["list_id"]) for r in rows]


def get_run(conn: Connection, run_id: int) -> dict[str, Any]:
    alive = liveness.alive(liveness.SYNC_RUN, sql.SQL("id"))
    row = conn.execute(
        sql.SQL("SELECT *, {} AS alive FROM crm_sync_runs WHERE id = %s").format(alive), (run_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(access.not_shared(f"sync run {run_id}", RUNS_HINT))
    return _interrupted(row)


def run_errors(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    """The records a run could not sync (or pulled and did not apply), and those it sent again to a record gone
    from the CRM, with the lead's email and the attempts."""
    get_run(conn, run_id)
    return conn.execute(
        "SELECT g.lead_id, l.email, g.action, g.category, g.message, g.attempts, g.at FROM crm_sync_log g "
        "LEFT JOIN leads l ON l.id = g.lead_id WHERE g.sync_id = %s AND g.action IN ('failed', 'invalid', %s, %s, %s) "
        "ORDER BY g.lead_id",
        (run_id, PULL_SKIPPED, RECREATED, RELINKED),
    ).fetchall()


def conflicts(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    return conn.execute("SELECT * FROM crm_conflicts WHERE sync_id = %s ORDER BY lead_id, field", (run_id,)).fetchall()


def links(conn: Connection, connection: str) -> list[dict[str, Any]]:
    return conn.execute("SELECT * FROM crm_links WHERE connection = %s ORDER BY lead_id", (connection,)).fetchall()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
