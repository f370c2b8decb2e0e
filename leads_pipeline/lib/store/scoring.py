"""Reads and writes of scores: configurations, current scores, the append-only history, stage changes, models.

Scores are written set-based: a chunk of results is COPY'd into a temporary table and merged with a few
statements (history rows only for leads whose score, components, stage or rules changed; stage changes guarded
against a concurrent manual change). Re-scoring the same leads with the same rules appends nothing and rewrites
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg.types.string import TextLoader

from leads_pipeline.lib.errors import NotFoundError
from leads_pipeline.lib.fields import CANONICAL_FIELDS
from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.scoring.config import CUSTOM_PREFIX, ScoringConfig
from leads_pipeline.lib.scoring.rules import LeadInput, Rules
from leads_pipeline.lib.scoring.stages import LADDER
from leads_pipeline.lib.store import access
from leads_pipeline.lib.store.db import key_column

Connection = psycopg.Connection[dict[str, Any]]

_LEAD_COLUMNS = ", ".join(f"l.{name}" for name in CANONICAL_FIELDS)
_LOAD_LEADS = f"""
SELECT l.id, {_LEAD_COLUMNS}, l.custom, l.stage, l.created_at, l.updated_at,
       greatest(l.updated_at, facts.last_observed) AS data_updated_at,
       tech.value AS technologies,
       coalesce(last_change.source, 'auto') AS stage_source
FROM leads l
LEFT JOIN LATERAL (SELECT max(observed_at) AS last_observed FROM lead_facts f WHERE f.lead_id = l.id) facts ON true
LEFT JOIN LATERAL (
    SELECT value FROM lead_facts f WHERE f.lead_id = l.id AND f.field = 'technologies'
    ORDER BY confidence DESC, observed_at DESC LIMIT 1
) tech ON true
LEFT JOIN LATERAL (
    SELECT source FROM stage_changes c WHERE c.lead_id = l.id ORDER BY c.id DESC LIMIT 1
) last_change ON true
WHERE l.id = ANY(%s) AND l.deleted_at IS NULL
ORDER BY l.id
"""


@dataclass(frozen=True)
class StoredLead:
    """A lead as scoring sees it, with its current stage and who set that stage last."""

    lead: LeadInput
    stage: str
    stage_source: str


class RuleInput(NamedTuple):
    """What the rules read of a lead, its values in the order of :attr:`Rules.fields`, and its current stage."""

    lead_id: int
    values: tuple[Any, ...]
    technologies: Sequence[str]
    data_updated_at: datetime | None
    stage: str
    stage_source: str


@dataclass(frozen=True)
class ScoreRow:
    """One lead's new score, ready to be written."""

    lead_id: int
    score: int
    components: dict[str, int]
    band: str
    reasons: list[str]
    stage: str
    previous_stage: str


def parse_technologies(value: str | None) -> tuple[str, ...]:
    """The technologies fact: a JSON array, or names separated by commas or semicolons."""
    if not value:
        return ()
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value.replace(";", ",").split(",")
    if isinstance(parsed, str):
        parsed = [parsed]
    if not isinstance(parsed, list):
        return ()
    return tuple(str(item).strip() for item in parsed if str(item).strip())


def save_config(conn: Connection, config: ScoringConfig) -> str:
    """Record the configuration under its version (once) and return the version."""
    conn.execute(
        "INSERT INTO scoring_configs (version, config) VALUES (%s, %s) ON CONFLICT (version) DO NOTHING",
        (config.version, json.dumps(config.as_document())),
    )
    return config.version


def create_rescore_batch(conn: Connection, batch_id: str, config_version: str) -> None:
    """The batch (kind 'selection') of the live leads last scored under ``config_version``, filled in one
    statement; re-creating the same batch id is a no-op, so a retried or re-executed rescore run adds nothing.

    Making it releases the members of the daily batches of earlier days (``rescore-YYYYMMDD-<config>``, every
    configuration's: one no longer in use has no batch of its own to release them): each day's batch held every
    scored lead for good, ~200 bytes a lead a day (100k leads: 7 GB a year), though only its run reads it. The
    batches stay, as the scores and history naming them do; re-running a superseded day scores nothing instead of
    setting scores back to that day's decay."""
    inserted = conn.execute(
        "INSERT INTO batches (id, kind, description) VALUES (%s, 'selection', %s)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        (batch_id, f"daily rescore ({config_version})"),
    ).fetchone()
    if inserted is not None:
        conn.execute(
            "INSERT INTO batch_leads (batch_id, lead_id) SELECT %s, s.lead_id FROM lead_scores s"
            " JOIN leads l ON l.id = s.lead_id WHERE s.config_version = %s AND l.deleted_at IS NULL",
            (batch_id, config_version),
        )
        conn.execute(
            "DELETE FROM batch_leads m USING batches b WHERE m.batch_id = b.id AND b.kind = 'selection'"
            " AND b.description LIKE 'daily rescore (%%' AND left(b.id, 16) < left(%s, 16)",
            (batch_id,),
        )


def load_leads(conn: Connection, lead_ids: Sequence[int]) -> Iterator[StoredLead]:
    """The leads, live ones only, in id order. The query is sent at once (in a pipeline: queued) and its rows are
    read as the result is iterated."""
    return (_stored_lead(row) for row in conn.execute(_LOAD_LEADS, (list(lead_ids),)))


_PRESENCE_BY_KEY = ("email", "phone", "mobile_phone")
"""Sealed fields whose blind index is there whenever the field is (sql/010): whether one is filled needs no
decryption."""


def load_rule_inputs(conn: Connection, lead_ids: Sequence[int], rules: Rules) -> Iterator[RuleInput]:
    """The leads as the rules read them, live ones only, in id order: only the columns and custom fields the rules
    use (:attr:`Rules.fields`: the fit model's too), text loaded as it is and only the sealed values they read
    opened. A sealed field counted only as filled
    or not (the default completeness counts email and phone) is told by its blind index, which hashes the value
    stripped (a value of blanks only has the blind index of ' '). Reading every column of 100k leads through the opening
    loader, each row a dict, took 2.9 s of this process; this takes 1.3 s.

    Queued like :func:`load_leads`: the query is sent at once, its rows read as the result is iterated."""
    selected: list[sql.Composable] = []
    sealed: list[int] = []
    custom: list[sql.Composable] = []
    for index, path in enumerate(rules.fields):
        if path.startswith(CUSTOM_PREFIX):
            key = sql.Literal(path.removeprefix(CUSTOM_PREFIX))
            custom.append(sql.SQL("{}, l.custom -> {}").format(key, key))
            selected.append(sql.SQL("NULL"))  # taken from the custom fields read, below
        elif path in _PRESENCE_BY_KEY and path in rules.presence_only:
            blank = crypto.blind_index(path, " ")
            selected.append(
                sql.SQL("CASE WHEN {} IS NOT NULL AND {} <> {} THEN true END").format(
                    sql.Identifier("l", path), key_column(f"{path}_bidx", "l"), sql.Literal(blank)
                )
            )
        else:
            selected.append(sql.Identifier("l", path))
            if path in crypto.SEALED_FIELDS:
                sealed.append(index)
    technologies = (
        """(SELECT value FROM lead_facts f WHERE f.lead_id = l.id AND f.field = 'technologies'
            ORDER BY confidence DESC, observed_at DESC LIMIT 1)"""
        if rules.uses_technologies
        else "NULL::text"
    )
    query = sql.SQL(
        """
        SELECT l.id, l.stage, coalesce(last_change.source, 'auto'),
               greatest(l.updated_at, (SELECT max(observed_at) FROM lead_facts f WHERE f.lead_id = l.id)),
               {technologies}, {custom}, {selected}
        FROM leads l
        LEFT JOIN LATERAL (
            SELECT source FROM stage_changes c WHERE c.lead_id = l.id ORDER BY c.id DESC LIMIT 1
        ) last_change ON true
        WHERE l.id = ANY(%s) AND l.deleted_at IS NULL
        ORDER BY l.id
        """
    ).format(
        technologies=sql.SQL(technologies),
        custom=sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(custom)) if custom else sql.SQL("NULL"),
        selected=sql.SQL(", ").join(selected),
    )
    cursor = conn.cursor(row_factory=tuple_row)
    # Text as it is: of the columns read, only those in ``sealed`` can hold sealed values, opened below; the
    # custom fields are JSON and keep the connection's opening loader.
    cursor.adapters.register_loader("text", TextLoader)
    cursor.execute(query, (list(lead_ids),))
    ring = crypto.keyring() if sealed else None
    custom_keys = [
        (i, p.removeprefix(CUSTOM_PREFIX)) for i, p in enumerate(rules.fields) if p.startswith(CUSTOM_PREFIX)
    ]

    def inputs() -> Iterator[RuleInput]:
        for lead_id, stage, stage_source, data_updated_at, technology, custom_values, *found in cursor:
            for index, key in custom_keys:
                found[index] = custom_values[key]
            if ring is not None:
                for index in sealed:
                    if found[index] is not None:
                        found[index] = ring.open(found[index])
            yield RuleInput(
                lead_id,
                tuple([(v.strip() or None) if isinstance(v, str) else v for v in found]),  # as LeadInput.value
                parse_technologies(technology),
                data_updated_at,
                stage,
                stage_source,
            )

    return inputs()


def _stored_lead(row: dict[str, Any]) -> StoredLead:
    """The row, once the keys that are not columns are taken out, is the lead's columns (canonical fields, stage,
    created and updated times): copying them into a new dict took half the time of turning rows into leads."""
    lead_id, custom, technologies = row.pop("id"), row.pop("custom"), row.pop("technologies")
    data_updated_at, stage_source = row.pop("data_updated_at"), row.pop("stage_source")
    return StoredLead(
        lead=LeadInput(
            id=int(lead_id),
            columns=row,
            custom=custom or {},
            technologies=parse_technologies(technologies),
            data_updated_at=data_updated_at,
        ),
        stage=row["stage"],
        stage_source=stage_source,
    )


_SCORED_LEADS = "l.id = ANY(ARRAY(SELECT lead_id FROM scored))"
"""The chunk's leads by their ids: joined to ``scored`` alone, the planner hashes the chunk and reads the whole
leads table for it (20k of 500k leads: 180 ms for no change at all, 36 ms by the ids, and the full read grows with
every lead of every list)."""


_LADDER = "ARRAY[" + ", ".join(f"'{stage}'" for stage in LADDER) + "]"
"""The stages automatic progression moves through, in order, as an SQL array (a literal: the chunk's writes send
no list parameter, which psycopg composes value by value)."""


def _reason_texts(reasons: str) -> str:
    """SQL: the JSON text of a reasons array with each reason's points taken out (``"title has 'vp' (+6)"``
    becomes ``"title has 'vp'"``, as :meth:`ScoreResult.explanation` wrote them)."""
    return f"""regexp_replace({reasons}::text, ' \\([+-][0-9]+\\)"', '"', 'g')"""


@dataclass(frozen=True)
class ScoreWrites:
    """The statements storing one chunk of scores; in a pipeline their counts are known once it is synced."""

    removed: psycopg.Cursor[dict[str, Any]]
    moved: psycopg.Cursor[dict[str, Any]]
    restaged: psycopg.Cursor[dict[str, Any]]
    appended: psycopg.Cursor[dict[str, Any]]

    def corrections(self) -> Iterator[tuple[int, str, str, int]]:
        """What a report counting the chunk's results (score, band, stage) takes back (-1) and counts instead
        (+1) to count what was stored: each lead deleted before its score was written, of which nothing was
        stored; each lead whose stage was set meanwhile (`leads stage set`), which kept the stage set."""
        for r in self.removed:
            yield r["score"], r["band"], r["stage"], -1
        for r in self.restaged:
            yield r["score"], r["band"], r["stage"], -1
            yield r["score"], r["band"], r["stored"], 1

    @property
    def stage_changes(self) -> int:
        return self.moved.rowcount

    @property
    def history_appended(self) -> int:
        return self.appended.rowcount


SCORED_LISTS: Final = 0x1EAD6
"""The advisory lock namespace of the lists a transaction scores leads of (``hold_scored_lists``)."""


def hold_scored_lists(conn: Connection, lead_ids: Sequence[int]) -> None:
    """Wait for every other transaction scoring leads of the same lists to end, and keep others out of them until
    this one ends. Two scorings of a list at once (`leads score` in a cron job beside the daily rescore, or two
    cron jobs) each compared with the current scores before the other had committed, and each appended the change
    to `score_history`: every lead's first score was in its history twice. The leads are not locked: an import or
    an edit of them waits for no scoring it did not wait for before. The locks are taken all at once and in one
    order, so two scorings of several lists never each wait for the other. The ids travel as one JSON document, as
    a chunk's scores do (``write_scores``)."""
    keys = conn.execute(
        "SELECT DISTINCT hashtext(list_id::text) AS key FROM leads"
        " WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)::bigint)) ORDER BY key",
        (json.dumps(list(lead_ids)),),
    ).fetchall()
    for row in keys:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (SCORED_LISTS, row["key"]))


def write_scores(
    conn: Connection,
    rows: Sequence[ScoreRow],
    *,
    batch_id: str | None,
    config_version: str,
    model_version: str | None,
    scored_at: datetime,
) -> ScoreWrites:
    """Store a chunk of scores: current scores replaced, history appended for changes, stages moved.

    Plain statements only (no COPY), so that a pipeline can send them while the next chunk is scored."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS scored (lead_id bigint PRIMARY KEY, score smallint, components jsonb,"
        " band text, reasons jsonb, stage text, previous_stage text) ON COMMIT DROP"
    )
    conn.execute("TRUNCATE scored")
    # The chunk travels as one JSON document: psycopg composes array parameters value by value in Python (escaping
    # every JSON text for the array syntax), which took a third of writing the chunk.
    conn.execute(
        "INSERT INTO scored (lead_id, score, components, band, reasons, stage, previous_stage)"
        " SELECT * FROM jsonb_to_recordset(%s::jsonb) AS t(lead_id bigint, score smallint, components jsonb,"
        " band text, reasons jsonb, stage text, previous_stage text)",
        (json.dumps([vars(r) for r in rows]),),
    )
    # A lead deleted since the chunk was read is left out: removed (an import undone, a list purged), its current
    # score would fail the chunk on its lead check; deleted softly (`leads bulk delete`, a list deleted, merged
    # away), it is no longer scored. The leads are held (key share) first, so a removal, a soft delete, a merge or
    # a person's stage change in flight (they hold their leads for update first) is waited for and then seen.
    removed = conn.execute(
        "WITH live AS (SELECT l.id FROM leads l WHERE " + _SCORED_LEADS + " AND l.deleted_at IS NULL"
        " ORDER BY l.id FOR KEY SHARE)"
        " DELETE FROM scored t WHERE NOT EXISTS (SELECT 1 FROM live WHERE live.id = t.lead_id)"
        " RETURNING t.lead_id, t.score, t.band, t.stage"
    )
    params = {"cfg": config_version, "model": model_version, "batch": batch_id, "at": scored_at}
    # A stage set by a person since the chunk was read stays: the move is made only from the stage read, and a
    # lowering (regression) only while that stage is still the thresholds' (`leads stage set` of the same stage
    # makes it a person's, which regression never lowers).
    moved = conn.execute(
        f"""
        WITH moved AS (
            UPDATE leads l SET stage = t.stage, score = t.score FROM scored t
            WHERE l.id = t.lead_id AND {_SCORED_LEADS} AND t.stage <> t.previous_stage AND l.stage = t.previous_stage
              AND (array_position({_LADDER}, t.stage) > array_position({_LADDER}, t.previous_stage)
                   OR (SELECT c.source FROM stage_changes c WHERE c.lead_id = l.id ORDER BY c.id DESC LIMIT 1)
                      IS DISTINCT FROM 'manual')
            RETURNING l.id, t.previous_stage, t.stage, t.score
        )
        INSERT INTO stage_changes (lead_id, from_stage, to_stage, source, score, reason, changed_at)
        SELECT id, previous_stage, stage, 'auto', score, 'score ' || score || ' crossed a threshold', %(at)s
        FROM moved
        """,
        params,
    )
    # A lead whose stage was set since the chunk was read kept that stage (the move above is guarded): the report
    # counts it there.
    restaged = conn.execute(
        "SELECT t.score, t.band, t.stage, l.stage AS stored FROM scored t"
        f" JOIN leads l ON l.id = t.lead_id AND {_SCORED_LEADS} WHERE l.stage <> t.stage"
    )
    appended = conn.execute(
        f"""
        INSERT INTO score_history
            (lead_id, score, components, band, stage, config_version, model_version, batch_id, scored_at)
        SELECT t.lead_id, t.score, t.components, t.band, l.stage, %(cfg)s, %(model)s, %(batch)s, %(at)s
        FROM scored t
        JOIN leads l ON l.id = t.lead_id AND {_SCORED_LEADS}
        LEFT JOIN lead_scores s ON s.lead_id = t.lead_id
        LEFT JOIN LATERAL (
            SELECT h.stage FROM score_history h WHERE h.lead_id = t.lead_id ORDER BY h.id DESC LIMIT 1
        ) last ON true
        WHERE s.lead_id IS NULL OR s.score <> t.score OR s.components <> t.components
           OR s.config_version <> %(cfg)s OR s.model_version IS DISTINCT FROM %(model)s
           OR last.stage IS DISTINCT FROM l.stage
        """,
        params,
    )
    # A current score whose score, components, band, reasons and versions stay is left as it is, scored_at (when
    # the lead got it) and batch included: rewriting it for a new scored_at was most of an unchanged rescore's
    # writes (100k leads: server CPU 3.0 -> 2.0 s, a new row version for each). The reasons are compared without
    # their points: recency's decay a little every day, and with the score and components unchanged the stored
    # points are still those of the stored components (a rescore of 100k leads a day later rewrote 76k rows).
    conn.execute(
        f"""
        INSERT INTO lead_scores
            (lead_id, score, components, band, reasons, config_version, model_version, batch_id, scored_at)
        SELECT lead_id, score, components, band, reasons, %(cfg)s, %(model)s, %(batch)s, %(at)s FROM scored
        ON CONFLICT (lead_id) DO UPDATE SET
            score = excluded.score, components = excluded.components, band = excluded.band,
            reasons = excluded.reasons, config_version = excluded.config_version,
            model_version = excluded.model_version, batch_id = excluded.batch_id, scored_at = excluded.scored_at
        WHERE (lead_scores.score, lead_scores.components, lead_scores.band,
               lead_scores.config_version, lead_scores.model_version)
              IS DISTINCT FROM (excluded.score, excluded.components, excluded.band,
                                excluded.config_version, excluded.model_version)
           OR (lead_scores.reasons <> excluded.reasons
               AND {_reason_texts("lead_scores.reasons")} <> {_reason_texts("excluded.reasons")})
        """,
        params,
    )
    # leads.score mirrors the current score so that search and filters (--score-min, sort by score) need no join.
    # The leads whose stage moved got theirs with the stage above: a lead is rewritten once, not twice (a lead's
    # row version costs an entry in each of its indexes; 100k first scores: ~2 s).
    conn.execute(
        "UPDATE leads l SET score = t.score FROM scored t"
        f" WHERE l.id = t.lead_id AND {_SCORED_LEADS} AND l.score IS DISTINCT FROM t.score"
    )
    return ScoreWrites(removed, moved, restaged, appended)


def set_stage(conn: Connection, lead_id: int, stage: str, *, user: str, reason: str | None) -> dict[str, Any]:
    """A person's stage change: recorded, and respected by automatic progression from then on.

    Setting the stage a person already set is a no-op (``changed`` False, nothing recorded). Setting the stage the
    thresholds reached is recorded: it makes the stage a person's, which automatic regression never lowers."""
    row = conn.execute("SELECT stage FROM leads WHERE id = %s AND deleted_at IS NULL FOR UPDATE", (lead_id,)).fetchone()
    if row is None:
        raise NotFoundError(access.not_shared(f"lead {lead_id}"))
    if row["stage"] == stage:
        last = conn.execute(
            "SELECT source, changed_by FROM stage_changes WHERE lead_id = %s ORDER BY id DESC LIMIT 1", (lead_id,)
        ).fetchone()
        if last is not None and last["source"] == "manual":
            by = last["changed_by"]
            return {"leadId": lead_id, "from": stage, "to": stage, "changedBy": by, "reason": None, "changed": False}
    current = conn.execute("SELECT score FROM lead_scores WHERE lead_id = %s", (lead_id,)).fetchone()
    conn.execute("UPDATE leads SET stage = %s WHERE id = %s", (stage, lead_id))
    conn.execute(
        "INSERT INTO stage_changes (lead_id, from_stage, to_stage, source, score, reason, changed_by)"
        " VALUES (%s, %s, %s, 'manual', %s, %s, %s)",
        (lead_id, row["stage"], stage, current["score"] if current else None, reason, user),
    )
    return {"leadId": lead_id, "from": row["stage"], "to": stage, "changedBy": user, "reason": reason, "changed": True}


def current_score(conn: Connection, lead_id: int) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM lead_scores WHERE lead_id = %s", (lead_id,)).fetchone()


def score_history(conn: Connection, lead_id: int) -> list[dict[str, Any]]:
    return list(
        conn.execute(
            "SELECT score, components, band, stage, config_version, model_version, batch_id, scored_at"
            " FROM score_history WHERE lead_id = %s ORDER BY id",
            (lead_id,),
        )
    )


def stage_history(conn: Connection, lead_id: int) -> list[dict[str, Any]]:
    return list(
        conn.execute(
            "SELECT from_stage, to_stage, source, score, reason, changed_by, changed_at"
            " FROM stage_changes WHERE lead_id = %s ORDER BY id",
            (lead_id,),
        )
    )


def get_lead(conn: Connection, lead_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT l.*, li.name AS list_name FROM leads l JOIN lists li ON li.id = l.list_id"
        " WHERE l.id = %s AND l.deleted_at IS NULL",
        (lead_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(access.not_shared(f"lead {lead_id}"))  # as to a stranger to its list: no more
    return row


def batch_score_problems(conn: Connection, batch_id: str, limit: int = 20) -> dict[str, Any]:
    """What the batch check reports: leads of the batch without a score, and scores whose components do not sum
    to the score."""
    unscored = conn.execute(
        "SELECT m.lead_id FROM batch_members m JOIN leads l ON l.id = m.lead_id"
        " LEFT JOIN lead_scores s ON s.lead_id = m.lead_id"
        " WHERE m.batch_id = %s AND l.deleted_at IS NULL AND s.lead_id IS NULL ORDER BY m.lead_id",
        (batch_id,),
    ).fetchall()
    mismatched = conn.execute(
        """
        SELECT s.lead_id, s.score, s.components FROM lead_scores s
        JOIN (SELECT DISTINCT lead_id FROM batch_members WHERE batch_id = %s) m ON m.lead_id = s.lead_id
        WHERE s.score <> (SELECT coalesce(sum(value::numeric), -1) FROM jsonb_each_text(s.components))
        ORDER BY s.lead_id
        """,
        (batch_id,),
    ).fetchall()
    checked = conn.execute(
        "SELECT count(DISTINCT m.lead_id) AS n FROM batch_members m JOIN leads l ON l.id = m.lead_id"
        " WHERE m.batch_id = %s AND l.deleted_at IS NULL",
        (batch_id,),
    ).fetchone()
    return {
        "checked": int(checked["n"]) if checked else 0,
        "unscored": [int(r["lead_id"]) for r in unscored],
        "mismatched": mismatched[:limit],
        "mismatched_count": len(mismatched),
    }


def save_model(
    conn: Connection,
    version: str,
    *,
    kind: str,
    features: dict[str, Any],
    metrics: dict[str, Any],
    training: dict[str, Any],
    model: bytes,
) -> None:
    conn.execute(
        "INSERT INTO scoring_models (version, kind, features, metrics, training, model)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (version) DO NOTHING",
        (version, kind, json.dumps(features), json.dumps(metrics), json.dumps(training), model),
    )


def load_model_row(conn: Connection, version: str | None) -> dict[str, Any]:
    """The model of ``version``, or the newest; a clear error when there is none."""
    if version:
        row = conn.execute("SELECT * FROM scoring_models WHERE version = %s", (version,)).fetchone()
    else:
        row = conn.execute("SELECT * FROM scoring_models ORDER BY created_at DESC, version DESC LIMIT 1").fetchone()
    if row is None:
        which = f"model {version!r}" if version else "a trained fit model"
        raise NotFoundError(
            f"the scoring configuration uses {which}, but there is none; train one by materializing "
            "the lead_fit_model asset (or set model.mode: off)"
        )
    return row
