"""Enrichment jobs, their progress and failures, the company profile cache, list settings and webhook deliveries.

Credits are recorded once: each costed fact writes a charge into ``credit_charges`` (sql/170, by a trigger in the
fact's transaction), which outlives the fact and its lead, so ``creditsUsed``, ``leads credits`` and the budget
checks read one truth that no deletion refunds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from leads_pipeline.lib.errors import AccessDeniedError, ConfigurationError, NotFoundError, PermanentError
from leads_pipeline.lib.fields import TYPED_FIELDS
from leads_pipeline.lib.privacy.crypto import seal, seal_details, seal_fact
from leads_pipeline.lib.store import access, liveness
from leads_pipeline.lib.store.audit import mask
from leads_pipeline.lib.store.db import existing_leads, key_column

Connection = psycopg.Connection[dict[str, Any]]

COMPANY_SOURCE_PREFIX = "company/"
"""Facts written by company enrichment have source ``company/<provider>``."""
COMPANY_INPUT_PAGE = 5000
"""Leads per page when an estimate reads a batch's company inputs (:func:`company_input_pages`)."""


@dataclass(frozen=True)
class Job:
    id: str
    sources: tuple[str, ...]
    template: str
    overwrite: bool
    priority: str
    max_credits: float | None
    estimated_credits: float
    estimated_seconds: float
    leads_queued: int
    notify_url: str | None
    status: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failure: str | None
    estimate: dict[str, Any]


HANDOVER_S: Final = 60.0
"""How long the detached ``leads jobs run`` waits for the process that started it to hand the job's lock over
(``claim_job``): that process lets go as soon as the new one waits for it (a second or so)."""


def claim_job(keeper: Connection, job_id: str, *, handover: bool = False) -> None:
    """Hold the lock of the job (``liveness.ENRICHMENT_JOB``) on ``keeper``'s session, which lasts as long as this
    process runs it or is about to: from before the job appears (``leads enrich``), or before it is resumed, until
    it is settled, the lock is held by the ``leads`` process that launched it, then by the one it launched, which
    waits for the hand-over (``handover``). Raises ``PermanentError`` when another process holds it."""
    taken = (
        liveness.await_claim(keeper, liveness.ENRICHMENT_JOB, job_id, HANDOVER_S)
        if handover
        else liveness.claim(keeper, liveness.ENRICHMENT_JOB, job_id)
    )
    if not taken:
        raise PermanentError(
            f"enrichment job {job_id} is still running in another process: `leads jobs show {job_id} --wait` follows it"
        )


def run_by_dagster(conn: Connection, job_id: str) -> bool:
    """Whether the Dagster run calling this (one Dagster launched: a sensor's, the UI's) may run the job: no
    ``leads`` process holds its lock (``claim_job``). From then on the job is Dagster's (``run_in_process`` false,
    as its sources starting record it), so a ``leads jobs resume`` taking the lock after this reads it so
    (``runs_in_process``) and stands down. A job of a version before sql/067 whose run waited in Dagster's run
    queue through the upgrade reads interrupted (sql/116): resumed, it ran in the ``leads`` process and again in
    that run once it started."""
    taken = conn.execute(
        sql.SQL(
            "UPDATE enrichment_jobs j SET run_in_process = false WHERE j.id = %s AND NOT {alive} RETURNING j.id"
        ).format(alive=liveness.alive(liveness.ENRICHMENT_JOB, sql.SQL("j.id"))),
        (job_id,),
    ).fetchone()
    return taken is not None


def runs_in_process(conn: Connection, job_id: str) -> bool:
    """Whether a ``leads`` process is still the one to run the job (``run_in_process``), read by one holding its
    lock: a Dagster run that took it over (``run_by_dagster``) between the caller reading it interrupted and taking
    the lock runs it. The row lock waits for such a run's transaction to end."""
    row = conn.execute("SELECT run_in_process FROM enrichment_jobs WHERE id = %s FOR UPDATE", (job_id,)).fetchone()
    return bool(row and row["run_in_process"])


def hand_over_to_resume(conn: Connection, job_id: str) -> bool:
    """Make a job a run Dagster launched left open (the run was canceled: terminated from the UI, or with its
    backfill) one a ``leads`` process is to run, as sql/116 does for jobs left open by an upgrade: no process holds
    its lock, so it reads ``interrupted`` and ``leads jobs resume`` goes on with it. Before, it read ``processing``
    for good and resume refused it as still running. True when the job was open."""
    row = conn.execute(
        """UPDATE enrichment_jobs SET run_in_process = true
           WHERE id = %s AND status IN ('queued', 'processing') AND NOT run_in_process RETURNING id""",
        (job_id,),
    ).fetchone()
    return row is not None


def _job(row: dict[str, Any]) -> Job:
    """The job of a row; one a ``leads`` process runs (``run_in_process``) that no process holds the lock of
    (``alive``, where the query reads it) is ``interrupted``: it will not end on its own. The lock is held from
    before the job is created or resumed (``claim_job``), so one still queued without it is interrupted too (its
    process was killed before it started). A queued job Dagster is to run may wait in its run queue: it stays
    queued."""
    status = row["status"]
    if row["run_in_process"]:
        status = liveness.status(status, ("queued", "processing"), row.get("alive", True))
    return Job(
        id=row["id"],
        sources=tuple(row["sources"]),
        template=row["template"],
        overwrite=row["overwrite"],
        priority=row["priority"],
        max_credits=None if row["max_credits"] is None else float(row["max_credits"]),
        estimated_credits=float(row["estimated_credits"]),
        estimated_seconds=float(row["estimated_seconds"]),
        leads_queued=row["leads_queued"],
        notify_url=row["notify_url"],
        status=status,
        created_by=row["created_by"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        failure=row["failure"],
        estimate=row["estimate"],
    )


# --- batches ---------------------------------------------------------------------------------


def batch_size(conn: Connection, batch_id: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM batch_members WHERE batch_id = %s", (batch_id,)).fetchone()
    assert row is not None
    return int(row["n"])


# --- jobs ---------------------------------------------------------------------------------------------------


def create_job(
    conn: Connection,
    job_id: str,
    *,
    sources: Sequence[str],
    template: str,
    overwrite: bool,
    priority: str,
    max_credits: float | None,
    estimate: dict[str, Any],
    leads_queued: int,
    notify_url: str | None,
    created_by: str,
    run_in_process: bool = False,
) -> Job:
    """A queued job; ``run_in_process`` when a ``leads`` process is to run it (``leads enrich``), so one still
    queued without that process reads as interrupted (``_job``), not as waiting in Dagster's run queue."""
    row = conn.execute(
        """INSERT INTO enrichment_jobs (id, sources, template, overwrite, priority, max_credits, estimated_credits,
               estimated_seconds, estimate, leads_queued, notify_url, created_by, run_in_process)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id
           RETURNING *""",
        (
            job_id,
            list(sources),
            template,
            overwrite,
            priority,
            max_credits,
            estimate["estimatedCredits"],
            estimate["estimatedTime"],
            Jsonb(estimate),
            leads_queued,
            seal(notify_url),  # a webhook's URL holds its token: sealed as personal data is (read back opened)
            created_by,
            run_in_process,
        ),
    ).fetchone()
    assert row is not None
    conn.execute(
        """INSERT INTO enrichment_progress (job_id, source, total) SELECT %s, s, %s FROM unnest(%s::text[]) s
           ON CONFLICT DO NOTHING""",
        (job_id, leads_queued, list(sources)),
    )
    return _job(row)


JOBS_HINT: Final = "`leads jobs ls` lists yours"
"""Where the refusal of an enrichment job that is not found or not shared points the user."""


_ALIVE: Final = sql.SQL("{} AS alive").format(liveness.alive(liveness.ENRICHMENT_JOB, sql.SQL("j.id")))


def get_job(conn: Connection, job_id: str) -> Job:
    job = find_job(conn, job_id)
    if job is None:
        raise NotFoundError(access.not_shared(f"enrichment job {job_id!r}", JOBS_HINT))
    return job


def find_job(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(sql.SQL("SELECT j.*, {} FROM enrichment_jobs j WHERE j.id = %s").format(_ALIVE), (job_id,))
    found = row.fetchone()
    return None if found is None else _job(found)


def recent_jobs(conn: Connection, user: str, limit: int = 20) -> list[Job]:
    """The newest jobs the user may read (see :func:`require_job_reader`)."""
    rows = conn.execute(
        sql.SQL(
            "SELECT j.*, {alive} FROM enrichment_jobs j WHERE j.created_by = %(user)s"
            " OR (SELECT bool_and(l.list_id = ANY(%(readable)s)) FROM batch_members b"
            " JOIN leads l ON l.id = b.lead_id WHERE b.batch_id = j.id)"  # NULL (not readable): its leads are gone
            " ORDER BY j.created_at DESC LIMIT %(limit)s"
        ).format(alive=_ALIVE),
        {"user": user, "readable": access.readable_list_ids(conn, user), "limit": limit},
    )
    return [_job(r) for r in rows]


def require_job_reader(conn: Connection, job_id: str, user: str) -> None:
    """A job's progress, counts and credits are for whoever started it and for those who may read every list
    its leads are in."""
    if get_job(conn, job_id).created_by != user:
        _require_on_job_lists(conn, job_id, user, "viewer", f"reading enrichment job {job_id}", write=False)


def require_job_runner(conn: Connection, job_id: str, user: str) -> Job:
    """Running a job writes its leads and spends credits: it needs the editor role on every list its leads are
    in, as creating it did (its starter included: a role revoked since stops it); a job whose leads are gone
    only its starter may run. Returns the job."""
    job = get_job(conn, job_id)
    _require_on_job_lists(
        conn, job_id, user, "editor", f"running enrichment job {job_id}", write=True, starter=job.created_by
    )
    return job


def _require_on_job_lists(
    conn: Connection, job_id: str, user: str, needed: access.Role, action: str, *, write: bool, starter: str = ""
) -> None:
    """``needed`` on every list the job's leads are in; a job whose leads are gone is refused (as unknown) to all
    but ``starter``."""
    rows = conn.execute(
        "SELECT DISTINCT l.list_id FROM batch_members b JOIN leads l ON l.id = b.lead_id WHERE b.batch_id = %s",
        (job_id,),
    )
    lists = [int(r["list_id"]) for r in rows]
    subject = f"enrichment job {job_id!r}"
    if not lists:
        if user == starter:
            return
        raise AccessDeniedError(access.not_shared(subject, JOBS_HINT))
    access.require_all(conn, lists, user, needed, action, write=write, subject=subject, hint=JOBS_HINT)


def start_source(conn: Connection, job_id: str, source: str, total: int) -> None:
    """A source begins (or restarts) on the job: its progress counts from zero again."""
    conn.execute(
        """INSERT INTO enrichment_progress (job_id, source, total, processed, status, started_at, note)
           VALUES (%s, %s, %s, 0, 'processing', now(), NULL)
           ON CONFLICT (job_id, source) DO UPDATE SET total = EXCLUDED.total, processed = 0,
               status = 'processing', started_at = now(), note = NULL, updated_at = now()""",
        (job_id, source, total),
    )
    conn.execute("DELETE FROM enrichment_failures WHERE job_id = %s AND source = %s", (job_id, source))
    # run_in_process: whether a `leads` process runs it (holding its lock), not a run Dagster launched
    conn.execute(
        sql.SQL(
            """UPDATE enrichment_jobs j SET status = 'processing', started_at = coalesce(started_at, now()),
                   completed_at = NULL, failure = NULL, run_in_process = {alive} WHERE j.id = %s"""
        ).format(alive=liveness.alive(liveness.ENRICHMENT_JOB, sql.SQL("j.id"))),
        (job_id,),
    )


def advance_source(conn: Connection, job_id: str, source: str, processed: int) -> None:
    conn.execute(
        """UPDATE enrichment_progress SET processed = least(total, processed + %s), updated_at = now()
           WHERE job_id = %s AND source = %s""",
        (processed, job_id, source),
    )


def finish_source(conn: Connection, job_id: str, source: str, status: str, note: str | None = None) -> None:
    """A source ended: ``completed`` (all leads processed), ``skipped`` (all leads seen, some work not done, with
    the reason) or ``failed``."""
    processed = "processed" if status == "failed" else "total"
    conn.execute(
        f"""UPDATE enrichment_progress SET status = %s, note = coalesce(%s, note), processed = {processed},
                updated_at = now() WHERE job_id = %s AND source = %s""",
        (status, note, job_id, source),
    )


def note_source(conn: Connection, job_id: str, source: str, note: str) -> None:
    conn.execute(
        "UPDATE enrichment_progress SET note = %s, updated_at = now() WHERE job_id = %s AND source = %s",
        (note, job_id, source),
    )


def record_failures(conn: Connection, job_id: str, source: str, lead_ids: Iterable[int], reason: str) -> None:
    """Record why these leads failed at ``source``; addresses and numbers a provider's error quotes are masked
    (the reason is kept in clear for the job's report, the contact data is not). A lead deleted since it was
    read gets none (``existing_leads``), nor one deleted softly (in bulk, with its list, merged away), whose values
    the job leaves alone: the job's results counted it as failed."""
    reason = mask(reason)
    ids = list(lead_ids)
    live = existing_leads(conn, ids, live=True)
    conn.cursor().executemany(
        """INSERT INTO enrichment_failures (job_id, lead_id, source, reason) VALUES (%s, %s, %s, %s)
           ON CONFLICT (job_id, lead_id, source) DO UPDATE SET reason = EXCLUDED.reason, at = now()""",
        [(job_id, lead_id, source, reason[:1000]) for lead_id in ids if lead_id in live],
    )


FAILED_NOTE = " leads failed: "
"""What the note of a source with failed leads says after their count (``N leads failed: causes``)."""


def clear_failures(conn: Connection, job_id: str, source: str) -> None:
    """Forget the source's failed leads and the note counting them: a run that asked them all again records those
    still failing (a retry answering them all left the source saying "2 leads failed")."""
    conn.execute("DELETE FROM enrichment_failures WHERE job_id = %s AND source = %s", (job_id, source))
    conn.execute(
        "UPDATE enrichment_progress SET note = NULL WHERE job_id = %s AND source = %s AND note LIKE %s",
        (job_id, source, f"%{FAILED_NOTE}%"),
    )


def settle_job(conn: Connection, job_id: str, failure: str | None = None) -> Job:
    """Derive the job's status from its sources: completed when all completed, partial when some did not."""
    rows = list(conn.execute("SELECT status FROM enrichment_progress WHERE job_id = %s", (job_id,)))
    statuses = {r["status"] for r in rows}
    if statuses & {"queued", "processing"} and failure is None:
        status = "processing"
    elif statuses == {"completed"} and failure is None:
        status = "completed"
    elif "completed" in statuses or "skipped" in statuses:
        status = "partial"
    else:
        status = "failed"
    done = status != "processing"
    row = conn.execute(
        """UPDATE enrichment_jobs SET status = %s, failure = coalesce(%s, failure),
               completed_at = CASE WHEN %s THEN coalesce(completed_at, now()) ELSE NULL END
           WHERE id = %s RETURNING *""",
        (status, failure, done, job_id),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no enrichment job {job_id!r}")
    return _job(row)


def refuse_job(conn: Connection, job_id: str, reason: str) -> Job:
    """A job not launched (``jobs.launch_refusal``): its sources and itself failed with the reason, which `leads
    jobs ls/show` print, so no sensor asks for it again."""
    conn.execute(
        "UPDATE enrichment_progress SET status = 'failed', note = %s, updated_at = now() WHERE job_id = %s",
        (reason, job_id),
    )
    return settle_job(conn, job_id, reason)


# --- credits ------------------------------------------------------------------------------------------------


def credits_used(conn: Connection, job_id: str, *, exclude_prefix: str | None = None) -> float:
    """Credits the job spent, its deleted leads' included (their facts are gone, their charges are not)."""
    query = "SELECT coalesce(sum(credits), 0) AS c FROM credit_charges WHERE job_id = %s"
    params: list[Any] = [job_id]
    if exclude_prefix:
        query += " AND source NOT LIKE %s"
        params.append(exclude_prefix + "%")
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return float(row["c"])


def credits_by_lead(conn: Connection, job_id: str, *, exclude_prefix: str | None = None) -> dict[int, float]:
    """What the job charged each of its leads so far (``credits_used`` per lead, the same exclusion); a lead
    deleted since has none to cap."""
    query = "SELECT lead_id, sum(credits) AS c FROM credit_charges WHERE job_id = %s AND lead_id IS NOT NULL"
    params: list[Any] = [job_id]
    if exclude_prefix:
        query += " AND source NOT LIKE %s"
        params.append(exclude_prefix + "%")
    return {int(r["lead_id"]): float(r["c"]) for r in conn.execute(query + " GROUP BY lead_id", params)}


def credits_this_month(
    conn: Connection, now: datetime | None = None, *, list_ids: Sequence[int] | None = None
) -> float:
    """Everyone's spending this month (what LEADS_MONTHLY_CREDITS caps), deleted leads' and lists' included;
    ``list_ids``: only what was spent on those lists (the part of it `leads credits` lists in its rows)."""
    start = (now or datetime.now(UTC)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    query = "SELECT coalesce(sum(credits), 0) AS c FROM credit_charges WHERE charged_at >= %s"
    params: list[Any] = [start]
    if list_ids is not None:
        query += " AND list_id = ANY(%s)"
        params.append(list(list_ids))
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return float(row["c"])


CREDIT_GROUPS = {
    "source": "c.source",
    "job": "coalesce(c.job_id, '(no job)')",
    "month": "to_char(date_trunc('month', c.charged_at), 'YYYY-MM')",
}


def credit_report(conn: Connection, by: str, user: str) -> list[dict[str, Any]]:
    """Credits spent on the lists ``user`` can read, grouped by source, job or month, from the ledger. The service
    connection reads past row-level security, so the ledger is narrowed here as its policy narrows it for a SQL
    login: anyone was shown every job (named after its list) and what it spent. A charge belongs to the list it
    was spent on, whatever became of its lead (deleted, moved); a deleted list's are listed to nobody, as its
    leads are, and count in ``credits_this_month`` only."""
    if by not in CREDIT_GROUPS:
        raise ConfigurationError(f"--by must be one of {', '.join(CREDIT_GROUPS)}; got {by!r}")
    rows = conn.execute(
        f"""SELECT {CREDIT_GROUPS[by]} AS key, sum(credits) AS credits, count(*) AS charges
            FROM credit_charges c WHERE c.list_id = ANY(%s) GROUP BY 1 ORDER BY 1""",
        (access.readable_list_ids(conn, user),),
    )
    return [{by: r["key"], "credits": float(r["credits"]), "charges": r["charges"]} for r in rows]


# --- company enrichment inputs and outputs -----------------------------------------------------------------


def _addresses_to_verify(
    conn: Connection, verdict: str, answer_of: str, by_source: bool, **params: Any
) -> list[dict[str, Any]]:
    """Counts of the addresses of the batch's live leads (``%(batch)s``) whose newest email verdict ``f`` (NULLs
    without one) meets ``verdict`` and which have no fresh answer of ``answer_of`` (an SQL expression) cached
    within ``%(age)s``, which the stage would reuse for free: once per address, as the cache makes it paid once;
    ``by_source``: per ``f.source``. ``{lead_key}`` in ``verdict`` is the lead's address key."""
    lead_key = key_column("email_bidx", "l")
    query = sql.SQL(
        """SELECT {source} count(DISTINCT l.email_bidx) AS n
           FROM batch_members m JOIN leads l ON l.id = m.lead_id
           LEFT JOIN LATERAL (
               SELECT source, value, details, observed_at FROM lead_facts
               WHERE lead_id = l.id AND field = 'email_status' ORDER BY observed_at DESC, id DESC LIMIT 1
           ) f ON TRUE
           WHERE m.batch_id = %(batch)s AND l.deleted_at IS NULL AND l.email IS NOT NULL AND ({verdict})
             AND NOT EXISTS (
                 SELECT 1 FROM email_verifications v
                 WHERE {cache_key} = {lead_key} AND v.method = {answer_of} AND v.checked_at > now() - %(age)s
                   AND NOT (v.status = 'unknown' AND v.cost = 0))
           {group}"""
    ).format(
        source=sql.SQL("f.source," if by_source else ""),
        verdict=sql.SQL(verdict).format(lead_key=lead_key),
        cache_key=key_column("email_bidx", "v"),
        lead_key=lead_key,
        answer_of=sql.SQL(answer_of),
        group=sql.SQL("GROUP BY f.source" if by_source else ""),
    )
    return list(conn.execute(query, params))


def stale_paid_verdicts(conn: Connection, batch_id: str, methods: Sequence[str], max_age: timedelta) -> dict[str, int]:
    """Per paid verifier (of ``methods``), the addresses of the batch's leads the email stage will buy again: the
    lead's newest verdict on its own address is a settled one (not "unknown") that verifier sold more than
    ``max_age`` ago, and no fresh paid answer on the address is cached (which the stage would reuse for free).
    The stage's own rule (``EmailStage._chunk``), counted once per address as the cache makes it paid once."""
    rows = _addresses_to_verify(
        conn,
        """f.source = ANY(%(methods)s) AND f.value <> 'unknown' AND f.observed_at <= now() - %(age)s
           AND (f.details ->> 'email_bidx') COLLATE "C" = {lead_key}""",
        "f.source",
        True,
        batch=batch_id,
        methods=list(methods),
        age=max_age,
    )
    return {r["source"]: int(r["n"]) for r in rows}


def unverified_addresses(
    conn: Connection, batch_id: str, method: str, paid_methods: Sequence[str], max_age: timedelta
) -> int:
    """The addresses of the batch's leads the email stage verifies that :func:`stale_paid_verdicts` does not
    count: the lead's newest verdict is not a settled one on its own address (there is none, it is "unknown", or
    it is on an address the lead no longer has), or it is a settled one older than ``max_age`` that no paid
    verifier (``paid_methods``) sold; and no fresh answer of ``method`` on the address is cached. With SMTP
    probing off, the stage buys each from ``method`` (``EmailStage._chunk``, ``EmailVerifier.verify_parsed``)."""
    rows = _addresses_to_verify(
        conn,
        """NOT coalesce((f.details ->> 'email_bidx') COLLATE "C" = {lead_key} AND f.value <> 'unknown'
                        AND (f.observed_at > now() - %(age)s OR f.source = ANY(%(paid)s)), FALSE)""",
        "%(method)s",
        False,
        batch=batch_id,
        method=method,
        paid=list(paid_methods),
        age=max_age,
    )
    return int(rows[0]["n"])


def profiles_to_read(conn: Connection, batch_id: str, max_age: timedelta) -> int:
    """The batch's leads that have a LinkedIn URL but no profile read within ``max_age``: the LinkedIn stage reads
    (and charges) their profile although they miss no URL (``LinkedInStage._chunk``'s rule)."""
    row = conn.execute(
        """SELECT count(*) AS n FROM batch_members m JOIN leads l ON l.id = m.lead_id
           WHERE m.batch_id = %s AND l.deleted_at IS NULL AND l.linkedin_url IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM lead_facts f WHERE f.lead_id = l.id AND f.field = 'linkedin_profile'
                             AND f.observed_at > now() - %s)""",
        (batch_id, max_age),
    ).fetchone()
    assert row is not None
    return int(row["n"])


def _company_inputs_query(*, by_id: bool) -> sql.Composed:
    """The batch's live leads (``by_id``: those of them in ``%(ids)s``) with what identifies their company and
    which company fields they already have, by id. Emails are left out: an address is opened only where it
    decides (:func:`lead_emails`)."""
    return sql.SQL(
        """SELECT l.id, l.company, l.company_key, l.company_domain, l.website, l.industry,
                  l.employee_count, l.annual_revenue,
                  ARRAY(SELECT DISTINCT f.field FROM lead_facts f WHERE f.lead_id = l.id AND f.value IS NOT NULL
                        AND NOT (f.batch_id IS NOT DISTINCT FROM %(batch)s AND f.source LIKE %(prefix)s))
                    AS fact_fields,
                  ARRAY(SELECT DISTINCT f.field FROM lead_facts f WHERE f.lead_id = l.id
                        AND f.batch_id = %(batch)s AND f.source LIKE %(prefix)s
                        AND f.details->>'applied' = 'true') AS applied_fields
           FROM leads l JOIN batch_members m ON m.lead_id = l.id
           WHERE m.batch_id = %(batch)s AND l.deleted_at IS NULL{ids} ORDER BY l.id"""
    ).format(ids=sql.SQL(" AND l.id = ANY(%(ids)s)") if by_id else sql.SQL(""))


def _without_own_fields(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Columns this batch's company enrichment itself filled read as empty, so a rerun sees the leads as the
    first run did and writes the same facts (the values come back from the cache, for free)."""
    for row in rows:
        for field in row.pop("applied_fields"):
            if field in LEAD_UPDATE_COLUMNS:
                row[field] = None
    return rows


def company_inputs(conn: Connection, batch_id: str, lead_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """These leads of the batch, live ones, by id, as :func:`company_input_pages` reads them: the run reads its
    companies' leads a page at a time."""
    params = {"batch": batch_id, "prefix": COMPANY_SOURCE_PREFIX + "%", "ids": list(lead_ids)}
    return {r["id"]: r for r in _without_own_fields(list(conn.execute(_company_inputs_query(by_id=True), params)))}


def company_input_pages(conn: Connection, batch_id: str) -> Iterator[list[dict[str, Any]]]:
    """The batch's live leads in pages of :data:`COMPANY_INPUT_PAGE`, from one server-side cursor: grouping a
    huge batch holds one page at a time (and reads the batch once, not once a page)."""
    params = {"batch": batch_id, "prefix": COMPANY_SOURCE_PREFIX + "%"}
    with conn.transaction(), conn.cursor(name="company_inputs") as cursor:
        cursor.execute(_company_inputs_query(by_id=False), params)
        while rows := cursor.fetchmany(COMPANY_INPUT_PAGE):
            yield _without_own_fields(rows)


def lead_emails(conn: Connection, lead_ids: Sequence[int]) -> dict[int, str | None]:
    """The (opened) emails of these leads only: the page reader asks for those whose company nothing else names."""
    if not lead_ids:
        return {}
    rows = conn.execute("SELECT id, email FROM leads WHERE id = ANY(%s)", (list(lead_ids),))
    return {r["id"]: r["email"] for r in rows}


def best_confidences(
    conn: Connection, lead_ids: Sequence[int], fields: Sequence[str], batch_id: str
) -> dict[tuple[int, str], int]:
    """The highest confidence of another source's fact per (lead, field): what a new value must match to win."""
    rows = conn.execute(
        """SELECT lead_id, field, max(confidence) AS c FROM lead_facts
           WHERE lead_id = ANY(%s) AND field = ANY(%s) AND value IS NOT NULL
             AND NOT (batch_id IS NOT DISTINCT FROM %s AND source LIKE %s)
           GROUP BY lead_id, field""",
        (list(lead_ids), list(fields), batch_id, COMPANY_SOURCE_PREFIX + "%"),
    )
    return {(r["lead_id"], r["field"]): r["c"] for r in rows}


@dataclass(frozen=True)
class CachedProfile:
    status: str
    name: str | None
    profile: dict[str, Any]
    sources: list[str]
    credits: float
    job_id: str | None
    fetched_at: datetime
    details: dict[str, Any]


def cached_profile(
    conn: Connection, lookup_key: str, provider: str, now: datetime | None = None
) -> CachedProfile | None:
    """The provider's unexpired answer for the company, if any."""
    row = conn.execute(
        """SELECT status, name, profile, sources, credits, job_id, fetched_at, details FROM company_profiles
           WHERE lookup_key = %s AND provider = %s AND expires_at > %s""",
        (lookup_key, provider, now or datetime.now(UTC)),
    ).fetchone()
    if row is None:
        return None
    return CachedProfile(
        row["status"],
        row["name"],
        row["profile"],
        row["sources"],
        float(row["credits"]),
        row["job_id"],
        row["fetched_at"],
        row["details"],
    )


def cached_lookups(
    conn: Connection, lookup_keys: Sequence[str], providers: Sequence[str], now: datetime | None = None
) -> set[tuple[str, str]]:
    """(lookup key, provider) of every unexpired answer among these companies and providers, in one query: what
    an estimate over thousands of companies takes as free."""
    rows = conn.execute(
        """SELECT lookup_key, provider FROM company_profiles
           WHERE lookup_key = ANY(%s) AND provider = ANY(%s) AND expires_at > %s""",
        (list(lookup_keys), list(providers), now or datetime.now(UTC)),
    )
    return {(r["lookup_key"], r["provider"]) for r in rows}


def store_profile(
    conn: Connection,
    *,
    lookup_key: str,
    provider: str,
    domain: str | None,
    status: str,
    name: str | None,
    name_key: str | None,
    profile: dict[str, Any],
    sources: Sequence[str],
    credits: float,
    details: dict[str, Any],
    job_id: str,
    ttl: timedelta,
) -> None:
    conn.execute(
        """INSERT INTO company_profiles (lookup_key, provider, domain, status, name, name_key, profile, sources,
               credits, details, job_id, fetched_at, expires_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now() + %s)
           ON CONFLICT (lookup_key, provider) DO UPDATE SET domain = EXCLUDED.domain, status = EXCLUDED.status,
               name = EXCLUDED.name, name_key = EXCLUDED.name_key, profile = EXCLUDED.profile,
               sources = EXCLUDED.sources, credits = EXCLUDED.credits, details = EXCLUDED.details,
               job_id = EXCLUDED.job_id, fetched_at = now(), expires_at = EXCLUDED.expires_at""",
        (
            lookup_key,
            provider,
            domain,
            status,
            name,
            name_key,
            Jsonb(profile),
            Jsonb(list(sources)),
            credits,
            Jsonb(details),
            job_id,
            ttl,
        ),
    )


@dataclass(frozen=True)
class FactRow:
    lead_id: int
    field: str
    value: str
    source: str
    confidence: int
    cost: float
    details: dict[str, Any]
    observed_at: datetime | None = None
    """When the provider gave the answer: a cached one is dated by its lookup, not by each job reusing it. None:
    now."""


LEAD_UPDATE_COLUMNS = ("company", "company_domain", "website", "industry", "employee_count", "annual_revenue")


def replace_company_facts(
    conn: Connection,
    batch_id: str,
    lead_ids: Sequence[int],
    facts: Sequence[FactRow],
    updates: dict[int, dict[str, Any]],
) -> None:
    """Replace this batch's company facts of the leads and apply the winning values to their columns (idempotent).
    A lead deleted since it was read gets none (``existing_leads``); one deleted softly since (in bulk, with its
    list, merged away) gets its facts, the record of what was bought, and keeps its columns. The charges of the
    facts replaced go with them: the rewrite charges the same paid answers again (one fact each), so a resumed
    job is not charged twice; a deleted lead's charge, whose fact is gone and not rewritten, stays."""
    live = existing_leads(conn, lead_ids)
    facts = [f for f in facts if f.lead_id in live]
    replaced = (batch_id, list(lead_ids), COMPANY_SOURCE_PREFIX + "%")
    conn.execute("SELECT set_config('leads.rewriting_company_facts', 'on', true)")  # the ledger allows it (sql/205)
    conn.execute(
        "DELETE FROM credit_charges WHERE fact_id IN (SELECT id FROM lead_facts"
        " WHERE batch_id = %s AND lead_id = ANY(%s) AND source LIKE %s AND cost > 0)",
        replaced,
    )
    conn.execute("SELECT set_config('leads.rewriting_company_facts', 'off', true)")
    conn.execute("DELETE FROM lead_facts WHERE batch_id = %s AND lead_id = ANY(%s) AND source LIKE %s", replaced)
    if facts:
        now = datetime.now(UTC)
        with conn.cursor().copy(
            "COPY lead_facts (lead_id, field, value, source, confidence, cost, batch_id, details, observed_at)"
            " FROM STDIN"
        ) as copy:
            for f in facts:
                copy.write_row(
                    (
                        f.lead_id,
                        f.field,
                        seal_fact(f.field, f.value),
                        f.source,
                        f.confidence,
                        Decimal(str(f.cost)),
                        batch_id,
                        json.dumps(seal_details(f.details)),
                        f.observed_at or now,
                    )
                )
    if updates:
        assignments = ", ".join(
            f"{c} = CASE WHEN %({c}__set)s THEN %({c})s::{_TYPES[c]} ELSE {c} END" for c in LEAD_UPDATE_COLUMNS
        )
        params = [
            {
                "id": lead_id,
                **{f"{c}__set": c in values for c in LEAD_UPDATE_COLUMNS},
                **{c: values.get(c) for c in LEAD_UPDATE_COLUMNS},
            }
            for lead_id, values in updates.items()
        ]
        conn.cursor().executemany(
            f"UPDATE leads SET {assignments}, updated_at = now() WHERE id = %(id)s AND deleted_at IS NULL", params
        )


_TYPES = {
    "company": "text",
    "company_domain": "text",
    "website": "text",
    "industry": "text",
    "employee_count": "integer",
    "annual_revenue": "numeric",
}


# --- job results --------------------------------------------------------------------------------------------


def result_counts(conn: Connection, job_id: str) -> dict[str, Any]:
    """Enriched, no-data and failed leads, and the per-source breakdown, from the batch's facts and failures.

    ``<source>_found`` means the same for every source: leads that got a value they did not have (a discovered
    address valid enough to be written, a direct dial, an accepted LinkedIn URL, a company value applied, or a
    company fact no lead column holds, such as technologies, that an earlier job had not given the lead), not
    the verification of what they had. ``enriched`` is the leads found by any source, so a job stopped by its
    cap reports only the leads it reached. A lead deleted softly (in bulk, with its list, merged away) is found
    and failed by none: one deleted while the job ran keeps its columns, yet gets its facts (what was bought)."""
    row = conn.execute(
        """WITH members AS (SELECT lead_id FROM batch_members WHERE batch_id = %(job)s),
                facts AS (SELECT f.id, f.lead_id, f.field, f.confidence, f.value, f.details, f.source
                          FROM lead_facts f JOIN leads l ON l.id = f.lead_id AND l.deleted_at IS NULL
                          WHERE f.batch_id = %(job)s AND f.value IS NOT NULL),
                found AS (SELECT lead_id, 'email' AS kind FROM facts WHERE field = 'email'
                            AND source <> 'existing' AND details->>'status' = 'valid'
                          UNION ALL SELECT lead_id, 'phone' FROM facts WHERE field = 'phone'
                            AND source <> 'phonenumbers' AND details->>'valid' = 'true'
                          UNION ALL SELECT lead_id, 'linkedin' FROM facts WHERE field = 'linkedin_url'
                          UNION ALL SELECT lead_id, 'company' FROM facts f WHERE source LIKE 'company/%%'
                            AND field NOT IN ('company_domain', 'website')
                            AND COALESCE(details->>'applied', 'true') = 'true'
                            AND (details ? 'applied' OR NOT EXISTS (
                                 SELECT 1 FROM lead_facts p WHERE p.lead_id = f.lead_id AND p.field = f.field
                                    AND p.value = f.value AND p.id < f.id
                                    AND p.batch_id IS DISTINCT FROM %(job)s))),
                failed AS (SELECT DISTINCT e.lead_id FROM enrichment_failures e
                           JOIN leads l ON l.id = e.lead_id AND l.deleted_at IS NULL WHERE e.job_id = %(job)s)
           SELECT
             (SELECT count(DISTINCT lead_id) FROM found) AS enriched,
             (SELECT count(*) FROM failed WHERE lead_id NOT IN (SELECT lead_id FROM found)) AS failed,
             (SELECT count(DISTINCT lead_id) FROM found WHERE kind = 'email') AS email_found,
             (SELECT count(DISTINCT lead_id) FROM facts WHERE field = 'email'
                AND (confidence >= 90 OR details->>'status' IN ('valid', 'deliverable')
                     OR details->>'verified' = 'true')) AS email_verified,
             (SELECT count(DISTINCT lead_id) FROM found WHERE kind = 'phone') AS phone_found,
             (SELECT count(DISTINCT lead_id) FROM facts WHERE field = 'mobile_phone'
                OR (field = 'phone' AND details->>'line_type' = 'mobile')
                OR (field IN ('phone_line_type', 'line_type') AND value = 'mobile')) AS phone_mobile,
             (SELECT count(DISTINCT lead_id) FROM found WHERE kind = 'linkedin') AS linkedin_found,
             (SELECT count(DISTINCT lead_id) FROM found WHERE kind = 'company') AS company_found,
             (SELECT count(*) FROM members) AS members""",
        {"job": job_id},
    ).fetchone()
    assert row is not None
    return dict(row)


def progress_rows(conn: Connection, job_id: str) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM enrichment_progress WHERE job_id = %s ORDER BY source", (job_id,)))


# --- list settings and webhook deliveries ------------------------------------------------------------------


def set_list_settings(
    conn: Connection,
    list_id: int,
    *,
    enrich_after_import: bool,
    sources: Sequence[str],
    template: str,
    priority: str,
    max_credits: float | None,
    notify_url: str | None,
) -> None:
    conn.execute(
        """INSERT INTO list_enrichment_settings (list_id, enrich_after_import, sources, template, priority,
               max_credits, notify_url) VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (list_id) DO UPDATE SET enrich_after_import = EXCLUDED.enrich_after_import,
               sources = EXCLUDED.sources, template = EXCLUDED.template, priority = EXCLUDED.priority,
               max_credits = EXCLUDED.max_credits, notify_url = EXCLUDED.notify_url, updated_at = now()""",
        (list_id, enrich_after_import, list(sources), template, priority, max_credits, seal(notify_url)),
    )


def list_settings(conn: Connection, list_id: int) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM list_enrichment_settings WHERE list_id = %s", (list_id,)).fetchone()


def imports_to_enrich(conn: Connection) -> list[dict[str, Any]]:
    """Imports completed since their list turned enrichAfterImport on, without a job for their batch yet or with
    one Dagster is to run that has not started.

    The job row is the marker: an import is enriched once however often the sensor runs, and imports that
    finish out of order are not missed (no id cursor to overtake them). A job still queued is asked for again,
    under the same run key, which Dagster launches once: a test of the sensor in the UI (a dry run, whose runs are
    not launched) made the job, and the import was never enriched."""
    return list(
        conn.execute(
            """SELECT i.id AS import_id, i.batch_id, i.list_id, s.sources, s.template, s.priority, s.max_credits,
                      s.notify_url, i.created_by
               FROM imports i JOIN list_enrichment_settings s ON s.list_id = i.list_id
               WHERE i.status = 'completed' AND s.enrich_after_import AND i.completed_at >= s.updated_at
                 AND NOT EXISTS (SELECT 1 FROM enrichment_jobs j WHERE j.id = i.batch_id
                                   AND (j.status <> 'queued' OR j.run_in_process))
               ORDER BY i.id"""
        )
    )


def delivered(conn: Connection, job_id: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM webhook_deliveries WHERE job_id = %s AND delivered", (job_id,)).fetchone()
        is not None
    )


def record_delivery(
    conn: Connection,
    *,
    job_id: str,
    run_id: str,
    url: str,
    payload: dict[str, Any],
    status_code: int | None,
    error: str | None,
    ok: bool,
) -> None:
    conn.execute(
        """INSERT INTO webhook_deliveries (job_id, run_id, url, payload, status_code, error, delivered)
           VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (job_id, run_id, url, Jsonb(payload), status_code, error, ok),
    )


def deliveries(conn: Connection, job_id: str) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM webhook_deliveries WHERE job_id = %s ORDER BY id", (job_id,)))


# --- attribution --------------------------------------------------------------------------------------------


def lead_attribution(conn: Connection, lead_id: int) -> dict[str, Any]:
    """Every field of a lead explained: its value, and each fact (source, confidence, cost, time) that won or lost.

    A canonical column's winner is the fact carrying the lead's current value, so an empty column has none (a
    risky find such as a catch-all address is kept as a fact, not applied); a field without a column is won by
    the best fact (confidence, then freshness), the rule the design gives for visible values.
    """
    lead = conn.execute("SELECT * FROM leads WHERE id = %s", (lead_id,)).fetchone()
    if lead is None:
        raise NotFoundError(f"no lead with id {lead_id}")
    facts = list(
        conn.execute(
            """SELECT field, value, source, confidence, cost, observed_at, batch_id, details FROM lead_facts
               WHERE lead_id = %s ORDER BY field, confidence DESC, observed_at DESC, id DESC""",
            (lead_id,),
        )
    )
    fields: dict[str, dict[str, Any]] = {}
    for fact in facts:
        entry = fields.setdefault(fact["field"], {"field": fact["field"], "value": None, "facts": []})
        entry["facts"].append(
            {
                "value": fact["value"],
                "source": fact["source"],
                "confidence": fact["confidence"],
                "cost": float(fact["cost"]),
                "observedAt": fact["observed_at"].isoformat(),
                "jobId": fact["batch_id"],
                "sources": [s.get("uri") for s in fact["details"].get("sources", []) if isinstance(s, dict)],
                "note": fact["details"].get("reason") or fact["details"].get("error"),
            }
        )
    for name, entry in fields.items():
        current = lead.get(name)
        won: dict[str, Any] | None = None
        if current is not None:
            entry["value"] = str(current)
            won = next((f for f in entry["facts"] if _equal(f["value"], current)), None)
        elif name not in lead:  # no column: the best fact with a value (not a failed photo download) is shown
            won = next((f for f in entry["facts"] if f["value"] is not None), None)
            entry["value"] = won["value"] if won else None
        for fact in entry["facts"]:
            fact["won"] = fact is won
        if current is not None and won is None:
            entry["facts"].insert(0, {"value": str(current), "source": "import", "won": True})
        if name in TYPED_FIELDS:  # stored as text, "293479000.00" was a JSON string beside the lead's 293479000
            entry["value"] = _number(entry["value"])
            for fact in entry["facts"]:
                fact["value"] = _number(fact["value"])
    return {"leadId": lead_id, "fields": list(fields.values())}


def _number(value: str | None) -> Decimal | str | None:
    """A number field's value as a number (``--json`` writes it as one, as the lead's own column); text that is
    none stays as it is."""
    try:
        number = None if value is None else Decimal(value)
    except ArithmeticError:
        return value
    return number if number is None or number.is_finite() else value


def _equal(value: str | None, current: Any) -> bool:
    if value is None:
        return False
    if isinstance(current, int | float | Decimal):
        try:
            return float(value) == float(current)
        except ValueError:
            return False
    return value.strip().casefold() == str(current).strip().casefold()
