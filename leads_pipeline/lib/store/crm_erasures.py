"""The queue of deletions an erasure request owes the connected CRMs (table ``crm_erasures``, sql/011).

``leads privacy delete`` calls ``queue`` in its transaction, before the person's CRM links are deleted: one row
per CRM record (connection, remote id) of the erased leads, with the request's keyed hash and nothing else about
the person. ``lib/crm/erasure.py`` works the queue: ``claim`` locks one pending row (so two processors never
send the same deletion at once), ``finish`` records the outcome and audits it in the same transaction.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from leads_pipeline.lib.store import audit
from leads_pipeline.lib.store.lists import Connection

Outcome = Literal["deleted", "absent", "failed", "retry"]
"""``deleted`` / ``absent`` (the CRM had no such record: done too), ``failed`` (refused for good), ``retry``
(transient: stays pending)."""

ACTION: Final = "privacy.crm-erasure"
"""The audit log action of each processed deletion."""


def queue(conn: Connection, lead_ids: list[int], subject: str, actor: str) -> int:
    """Queue the deletion of every CRM record linked to ``lead_ids``; returns how many were queued now (a record
    already queued, e.g. by an earlier request, is not queued twice)."""
    if not lead_ids:
        return 0
    return conn.execute(
        "INSERT INTO crm_erasures (connection, crm, remote_id, subject, requested_by)"
        " SELECT k.connection, c.crm, k.remote_id, %s, %s FROM crm_links k"
        " JOIN crm_connections c ON c.name = k.connection WHERE k.lead_id = ANY(%s)"
        " ORDER BY k.connection, k.remote_id ON CONFLICT (connection, remote_id) DO NOTHING",
        (subject, actor, lead_ids),
    ).rowcount


def pending_ids(conn: Connection, connection: str | None = None) -> list[int]:
    """Ids of the pending requests (of one connection, or all), oldest first."""
    rows = conn.execute(
        "SELECT id FROM crm_erasures WHERE status = 'pending' AND (%(c)s::text IS NULL OR connection = %(c)s)"
        " ORDER BY id",
        {"c": connection},
    )
    return [int(r["id"]) for r in rows]


def claim(conn: Connection, request_id: int) -> dict[str, Any] | None:
    """Lock the request for this transaction if it is still pending and nobody else holds it; else None."""
    return conn.execute(
        "SELECT * FROM crm_erasures WHERE id = %s AND status = 'pending' FOR UPDATE SKIP LOCKED", (request_id,)
    ).fetchone()


def finish(
    conn: Connection, request: dict[str, Any], outcome: Outcome, attempts: int, actor: str, error: str | None = None
) -> None:
    """Record one processing of ``request`` (``attempts`` calls made now) and audit it."""
    status = {"deleted": "done", "absent": "done", "failed": "failed", "retry": "pending"}[outcome]
    conn.execute(
        "UPDATE crm_erasures SET status = %s, outcome = %s, attempts = attempts + %s, last_error = %s,"
        " last_attempt = now(), done_at = CASE WHEN %s = 'done' THEN now() END WHERE id = %s",
        (status, outcome if status == "done" else None, attempts, error, status, request["id"]),
    )
    audit.record(
        conn,
        actor,
        ACTION,
        f"crm:{request['connection']}:{request['remote_id']}",
        {
            "subject": request["subject"],
            "crm": request["crm"],
            "connection": request["connection"],
            "outcome": outcome,
            "attempts": attempts,
            **({"error": error} if error else {}),
        },
    )


def note_blocked(conn: Connection, connection: str, error: str) -> int:
    """Record on every pending request of ``connection`` why it could not be tried (no connection file, CRM not
    configured); they stay pending. Returns how many."""
    return conn.execute(
        "UPDATE crm_erasures SET last_error = %s, last_attempt = now() WHERE connection = %s AND status = 'pending'",
        (error, connection),
    ).rowcount


def listing(conn: Connection, status: str | None = None) -> list[dict[str, Any]]:
    """The queue (all, or one status), newest first."""
    return conn.execute(
        "SELECT id, connection, crm, remote_id, status, outcome, attempts, last_error, requested_by, requested_at,"
        " last_attempt, done_at FROM crm_erasures WHERE %(s)s::text IS NULL OR status = %(s)s ORDER BY id DESC",
        {"s": status},
    ).fetchall()


def counts(conn: Connection) -> dict[str, int]:
    """How many requests are pending, done and failed."""
    rows = conn.execute("SELECT status, count(*) AS n FROM crm_erasures GROUP BY status").fetchall()
    found = {r["status"]: int(r["n"]) for r in rows}
    return {status: found.get(status, 0) for status in ("pending", "done", "failed")}


def is_queued(conn: Connection, connection: str, remote_id: str) -> bool:
    """Whether the CRM record belongs to an erased person (queued for deletion, whatever its state): a pull must
    not bring it back as a new lead."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM crm_erasures WHERE connection = %s AND remote_id = %s) AS queued",
        (connection, remote_id),
    ).fetchone()
    return bool(row and row["queued"])
