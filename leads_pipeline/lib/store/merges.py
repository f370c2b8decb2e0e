"""Duplicate leads in the database: reading candidates, merging a cluster into one survivor, and undo.

A merge keeps one survivor (the most complete lead, the oldest on a tie), fills its empty fields and custom
fields from the others, moves every fact of the others to it (provenance survives: the facts keep their
source, confidence and cost) and records each filled value as a fact of source ``merge``. The survivor is opted out
if any of the leads was (they are one person). The others are
soft-deleted with ``merged_into`` set. The ``merges`` row keeps the survivor's row as it was, its tags, the
facts moved and added, so ``undo_merge`` puts every lead back exactly as it was.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from psycopg import sql

from leads_pipeline.lib.errors import AccessDeniedError, ConfigurationError, NotFoundError
from leads_pipeline.lib.fields import CANONICAL_FIELDS, PHONE_EXTENSIONS
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.privacy.crypto import SEALED_FIELDS, lead_columns, open_frame, seal_fact
from leads_pipeline.lib.store import access, audit
from leads_pipeline.lib.store.lists import Connection, hold_lists_of
from leads_pipeline.lib.store.search import where_clause

if TYPE_CHECKING:  # reading candidates loads pandas, pyarrow and the matcher; merging and the history need none
    import pandas as pd

    from leads_pipeline.lib.dedupe.leads import DuplicateCluster

_FILLED: Final[tuple[str, ...]] = (*CANONICAL_FIELDS, "phone_ext", "mobile_phone_ext", "company_key", "name_key")
"""Fields a merge may fill on the survivor from the other leads (never stage, score or history)."""
_KEPT_BY_UNDO: Final = frozenset({"stage", "score"})
"""Columns a merge never writes and scoring or a person changes without touching ``updated_at`` (so the undo's
"changed since" check cannot see it): an undo keeps them as they are now."""
MERGE_SOURCE: Final = "merge"
_MERGE_CONFIDENCE: Final = 80


@dataclass(frozen=True)
class MergeResult:
    merge_id: int
    survivor_id: int
    merged_ids: list[int]
    filled: dict[str, int]
    moved_facts: int

    def as_json(self) -> dict[str, Any]:
        return {
            "mergeId": self.merge_id,
            "survivorId": self.survivor_id,
            "mergedIds": self.merged_ids,
            "filled": self.filled,
            "movedFacts": self.moved_facts,
        }


def candidate_frame(conn: Connection, selection: Selection, user: str) -> pd.DataFrame:
    """The live selected leads' ``COLUMNS`` as a DataFrame, streamed with COPY (a million leads in seconds)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from leads_pipeline.lib.dedupe.leads import COLUMNS

    query = sql.SQL("COPY (SELECT {cols} FROM leads l WHERE {w}) TO STDOUT (FORMAT csv)").format(
        cols=sql.SQL(", ").join(sql.SQL("l.{}").format(sql.Identifier(c)) for c in COLUMNS),
        w=where_clause(conn, selection, user),
    )
    buffer = io.BytesIO()
    with conn.cursor().copy(query) as copy:
        for block in copy:
            buffer.write(block)
    types = {c: pa.string() for c in COLUMNS}
    types.update({"id": pa.int64(), "list_id": pa.int64()})
    if buffer.tell() == 0:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in COLUMNS}).astype({"id": "int64", "list_id": "int64"})
    buffer.seek(0)
    table = pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=list(COLUMNS)),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
    )
    return open_frame(table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get))


def detect(conn: Connection, selection: Selection, user: str) -> list[DuplicateCluster]:
    """Clusters of duplicates among the selected leads (within and across the selected lists)."""
    from leads_pipeline.lib.dedupe.leads import find_clusters

    return find_clusters(candidate_frame(conn, selection, user))


def _lead_columns(conn: Connection) -> list[str]:
    """Every column of leads but the id, read from the catalog so columns added by later migrations are kept."""
    return [
        r["column_name"]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'leads' AND table_name = 'leads'"
            " AND column_name <> 'id' AND is_generated = 'NEVER' ORDER BY ordinal_position"
        )
    ]


_EXTENSION_OF: Final = {extension: phone for phone, extension in PHONE_EXTENSIONS.items()}


def _same_number(other: dict[str, Any], phone: str, values: dict[str, Any], survivor: dict[str, Any]) -> bool:
    """Whether ``other`` has the number the survivor ends up with in ``phone`` (its own, or one filled now)."""
    return other[phone] is not None and other[phone] == values.get(phone, survivor[phone])


def _completeness(row: dict[str, Any]) -> int:
    return sum(1 for f in CANONICAL_FIELDS if row[f] not in (None, ""))


class NothingLeftToMerge(ConfigurationError):
    """Fewer than two of a cluster's leads are still live: merged (by another merge at once) or deleted since the
    cluster was found. ``leads dedupe --merge`` skips the cluster; asked for one merge, it is the answer."""


class Mergeable(Protocol):
    """A cluster to merge: its leads, why they matched and how well (a ``DuplicateCluster`` is one)."""

    @property
    def lead_ids(self) -> list[int]: ...
    @property
    def reasons(self) -> list[str]: ...
    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class _Cluster:
    lead_ids: list[int]
    reasons: list[str]
    score: float


CHUNK_CLUSTERS: Final = 1000
"""Clusters merged together, in one transaction and a fixed number of statements (``merge_clusters``)."""


def merge_cluster(conn: Connection, lead_ids: list[int], user: str, *, reasons: list[str], score: float) -> MergeResult:
    """Merge the leads into one survivor in one transaction (editor on every list involved); see module doc.

    The role is checked first, on the lists of all the leads, live or deleted (an id no lead has is refused as
    a lead not shared): only then is anyone told that fewer than two of them are live."""
    (result,) = merge_clusters(conn, [_Cluster(lead_ids, reasons, score)], user)
    if isinstance(result, NothingLeftToMerge):
        raise result
    return result


def merge_clusters(
    conn: Connection, clusters: Sequence[Mergeable], user: str
) -> list[MergeResult | NothingLeftToMerge]:
    """Merge each cluster as ``merge_cluster`` does, in order, ``CHUNK_CLUSTERS`` at a time in one transaction
    each and a fixed number of statements (one per table, and the role checks of each list once): merged one
    by one, 10,000 clusters took ~18 statements each and 123 s. A cluster with fewer than two live leads gets
    ``NothingLeftToMerge`` in its place. A refused cluster raises its refusal once the clusters before it are
    merged, as merging them one by one did; a chunk ends before a lead already in it (clusters that share a lead
    are merged one after the other)."""
    results: list[MergeResult | NothingLeftToMerge] = []
    chunk: list[Mergeable] = []
    seen: set[int] = set()
    for cluster in clusters:
        if len(chunk) == CHUNK_CLUSTERS or seen.intersection(cluster.lead_ids):
            results.extend(_merge_chunk(conn, chunk, user))
            chunk, seen = [], set()
        chunk.append(cluster)
        seen.update(cluster.lead_ids)
    if chunk:
        results.extend(_merge_chunk(conn, chunk, user))
    return results


def _subject(lead_ids: list[int]) -> str:
    return f"leads {', '.join(map(str, lead_ids))}"


@dataclass(frozen=True)
class _Plan:
    """One cluster's merge as worked out from its rows, before anything is written."""

    cluster: Mergeable
    survivor: dict[str, Any]
    others: list[dict[str, Any]]
    filled: dict[str, int]
    stored: dict[str, Any]
    custom: dict[str, Any]
    fact_values: list[str | None]
    opted_out_at: datetime | None

    @property
    def other_ids(self) -> list[int]:
        return [o["id"] for o in self.others]


def _plan(cluster: Mergeable, rows: list[dict[str, Any]]) -> _Plan:
    """The survivor (the most complete, the oldest on a tie), what it takes from the others, and its opt-out."""
    ordered = sorted(rows, key=lambda r: (-_completeness(r), r["id"]))
    survivor, others = ordered[0], ordered[1:]
    filled: dict[str, int] = {}
    values: dict[str, Any] = {}
    for other in others:
        for name in _FILLED:
            if survivor[name] in (None, "") and name not in values and other[name] not in (None, ""):
                if name in _EXTENSION_OF and not _same_number(other, _EXTENSION_OF[name], values, survivor):
                    continue  # an extension belongs to its number: another number's would be wrong here
                values[name] = other[name]
                filled[name] = other["id"]
    custom = dict(json.loads(survivor["custom_sealed"]))  # sealed raw values moved to custom stay sealed
    for other in others:
        for key, value in json.loads(other["custom_sealed"]).items():
            if key not in custom:
                custom[key] = value
                filled[f"custom.{key}"] = other["id"]
    stored: dict[str, Any] = {}
    for name, value in values.items():
        stored.update(lead_columns(name, value) if name in SEALED_FIELDS else {name: value})
    opted = [r["opted_out_at"] for r in rows if r["opted_out_at"] is not None]
    return _Plan(
        cluster,
        survivor,
        others,
        filled,
        stored,
        custom,
        [seal_fact(f, str(values[f])) if f in values else str(custom[f[7:]]) for f in filled],
        # one person: an opt-out of any of the leads is theirs
        min(opted) if opted and survivor["opted_out_at"] is None else None,
    )


def _refusal(
    conn: Connection, chunk: Sequence[Mergeable], held: dict[int, int], user: str
) -> tuple[int, AccessDeniedError] | None:
    """The first cluster the user may not merge and why: an id no lead has (refused as a lead not shared), or a
    list of its leads (live or deleted) they are not an editor of. Each list is asked about once."""
    allowed: set[int] = set()
    for index, cluster in enumerate(chunk):
        subject = _subject(cluster.lead_ids)
        try:
            if set(cluster.lead_ids) - set(held):
                raise AccessDeniedError(access.not_shared(subject))
            lists = {held[i] for i in cluster.lead_ids} - allowed
            access.require_all(conn, list(lists), user, "editor", "merging its leads", subject=subject)
        except AccessDeniedError as exc:
            return index, exc
        allowed |= lists
    return None


def _merge_chunk(conn: Connection, chunk: Sequence[Mergeable], user: str) -> list[MergeResult | NothingLeftToMerge]:
    """Merge clusters that share no lead in one transaction, a statement per table for all of them."""
    with conn.transaction():
        every = [i for c in chunk for i in c.lead_ids]
        hold_lists_of(conn, every)
        live: dict[int, dict[str, Any]] = {
            r["id"]: r
            for r in conn.execute(
                "SELECT *, custom::text AS custom_sealed FROM leads WHERE id = ANY(%s) AND deleted_at IS NULL"
                " ORDER BY id FOR UPDATE",
                (every,),
            )
        }
        held = {
            r["id"]: r["list_id"] for r in conn.execute("SELECT id, list_id FROM leads WHERE id = ANY(%s)", (every,))
        }
        refusal = _refusal(conn, chunk, held, user)
        outcomes: list[_Plan | NothingLeftToMerge] = []
        for cluster in chunk[: refusal[0] if refusal else len(chunk)]:
            rows = [live[i] for i in sorted(set(cluster.lead_ids)) if i in live]
            outcomes.append(
                _plan(cluster, rows)
                if len(rows) >= 2
                else NothingLeftToMerge(
                    f"{_subject(cluster.lead_ids)}: fewer than two of them are live; nothing to merge "
                    "(run `leads dedupe` again to see the current clusters)"
                )
            )
        written = iter(_write(conn, [o for o in outcomes if isinstance(o, _Plan)], user))
        results: list[MergeResult | NothingLeftToMerge] = [
            o if isinstance(o, NothingLeftToMerge) else next(written) for o in outcomes
        ]
    if refusal:
        raise refusal[1]
    return results


def _pairs(plans: list[_Plan]) -> tuple[list[int], list[int]]:
    """Each merged lead and its survivor, as two arrays for ``unnest``."""
    pairs = [(o, p.survivor["id"]) for p in plans for o in p.other_ids]
    return [o for o, _ in pairs], [s for _, s in pairs]


def _write(conn: Connection, plans: list[_Plan], user: str) -> list[MergeResult]:
    """Write the merges planned (their leads locked): a statement per table for all of them, in the order a
    single merge writes (facts, survivor, tags, merged leads, merge record, audit)."""
    if not plans:
        return []
    survivors = [p.survivor["id"] for p in plans]
    merged, into = _pairs(plans)
    # as text: the row as stored, its PII still sealed (the connection opens JSON values it loads)
    before = {
        r["id"]: r
        for r in conn.execute(
            "SELECT l.id, to_jsonb(l)::text AS row, ARRAY(SELECT t.tag FROM lead_tags t WHERE t.lead_id = l.id) AS tags"
            " FROM leads l WHERE l.id = ANY(%s)",
            (survivors,),
        )
    }
    moved: dict[int, dict[str, int]] = {s: {} for s in survivors}
    for r in sorted(
        conn.execute(
            "UPDATE lead_facts f SET lead_id = m.survivor FROM unnest(%s::bigint[], %s::bigint[]) AS m(lead, survivor)"
            " WHERE f.lead_id = m.lead RETURNING f.id, m.lead, m.survivor",
            (merged, into),
        ),
        key=lambda r: r["id"],
    ):
        moved[r["survivor"]][str(r["id"])] = r["lead"]
    added: dict[int, list[int]] = {s: [] for s in survivors}
    for r in conn.execute(
        "INSERT INTO lead_facts (lead_id, field, value, source, confidence, details)"
        " SELECT f.lead_id, f.field, f.value, %s, %s, jsonb_build_object('from_lead', f.from_lead)"
        " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[]) WITH ORDINALITY"
        " AS f(lead_id, field, value, from_lead, n) ORDER BY f.n RETURNING id, lead_id",
        (
            MERGE_SOURCE,
            _MERGE_CONFIDENCE,
            [p.survivor["id"] for p in plans for _ in p.filled],
            [f for p in plans for f in p.filled],
            [v for p in plans for v in p.fact_values],
            [i for p in plans for i in p.filled.values()],
        ),
    ):
        added[r["lead_id"]].append(r["id"])
    after = {r["id"]: r["updated_at"] for r in _update_survivors(conn, plans)}
    conn.execute(
        "INSERT INTO lead_tags (lead_id, tag) SELECT m.survivor, t.tag FROM lead_tags t"
        " JOIN unnest(%s::bigint[], %s::bigint[]) AS m(lead, survivor) ON t.lead_id = m.lead ON CONFLICT DO NOTHING",
        (merged, into),
    )
    conn.execute(
        "UPDATE leads l SET deleted_at = now(), merged_into = m.survivor"
        " FROM unnest(%s::bigint[], %s::bigint[]) AS m(lead, survivor) WHERE l.id = m.lead",
        (merged, into),
    )
    records = {
        r["survivor_id"]: r["id"]
        for r in conn.execute(
            "INSERT INTO merges (survivor_id, merged_ids, survivor_before, survivor_after, survivor_tags,"
            " moved_facts, added_facts, filled, reasons, score, created_by)"
            " SELECT m.survivor_id, m.merged_ids, m.survivor_before::jsonb, m.survivor_after, m.survivor_tags,"
            " m.moved_facts, m.added_facts, m.filled, m.reasons, m.score, %s"
            " FROM jsonb_to_recordset(%s::jsonb) AS m(n integer, survivor_id bigint, merged_ids bigint[],"
            " survivor_before text, survivor_after timestamptz, survivor_tags text[], moved_facts jsonb,"
            " added_facts bigint[], filled jsonb, reasons jsonb, score float8) ORDER BY m.n RETURNING id, survivor_id",
            (
                user,
                json.dumps(
                    [
                        {
                            "n": n,
                            "survivor_id": s,
                            "merged_ids": p.other_ids,
                            "survivor_before": before[s]["row"],
                            "survivor_after": after[s].isoformat(),
                            "survivor_tags": before[s]["tags"],
                            "moved_facts": moved[s],
                            "added_facts": added[s],
                            "filled": p.filled,
                            "reasons": p.cluster.reasons,
                            "score": p.cluster.score,
                        }
                        for n, (s, p) in enumerate(zip(survivors, plans, strict=True))
                    ]
                ),
            ),
        )
    }
    audit.record_many(
        conn,
        user,
        "leads.merge",
        [
            (f"merge:{records[s]}", {"survivorId": s, **audit.lead_ids(p.cluster.lead_ids)})
            for s, p in zip(survivors, plans, strict=True)
        ],
    )
    return [
        MergeResult(records[s], s, p.other_ids, p.filled, len(moved[s])) for s, p in zip(survivors, plans, strict=True)
    ]


def _update_survivors(conn: Connection, plans: list[_Plan]) -> list[dict[str, Any]]:
    """Write each survivor's filled fields, custom fields and opt-out in one statement; its id and new
    ``updated_at``. A column no survivor fills is not in the statement; one that some fill keeps its value in the
    others (its triggers, which look at what changed, see no change there)."""
    columns = sorted({c for p in plans for c in p.stored})
    assignments = [
        sql.SQL("{c} = CASE WHEN v.stored ? {name} THEN (v.typed).{c} ELSE l.{c} END").format(
            c=sql.Identifier(c), name=sql.Literal(c)
        )
        for c in columns
    ]
    return list(
        conn.execute(
            sql.SQL(
                "UPDATE leads l SET {assignments}custom = v.custom,"
                " opted_out_at = coalesce(v.opted_out_at, l.opted_out_at), updated_at = clock_timestamp()"
                " FROM (SELECT u.id, u.stored, u.custom, u.opted_out_at, jsonb_populate_record(NULL::leads, u.stored)"
                " AS typed FROM unnest(%s::bigint[], %s::jsonb[], %s::jsonb[], %s::timestamptz[])"
                " AS u(id, stored, custom, opted_out_at)) v"
                " WHERE l.id = v.id RETURNING l.id, l.updated_at"
            ).format(assignments=sql.SQL("").join(a + sql.SQL(", ") for a in assignments)),
            (
                [p.survivor["id"] for p in plans],
                [json.dumps(p.stored, default=str) for p in plans],
                [json.dumps(p.custom) for p in plans],
                [p.opted_out_at for p in plans],
            ),
        )
    )


MERGES_HINT: Final = "`leads merges list` lists yours"
"""Where the refusal of a merge that is not found or not shared points the user."""


def undo_merge(conn: Connection, merge_id: int, user: str) -> dict[str, Any]:
    """Restore the survivor's row and tags, give the moved facts back, drop the facts the merge added and bring
    the merged leads back. Refused if the survivor changed after the merge (undo would lose that change); its
    stage and score (``_KEPT_BY_UNDO``) and an opt-out recorded since are kept."""
    with conn.transaction():
        merge = conn.execute("SELECT * FROM merges WHERE id = %s FOR UPDATE", (merge_id,)).fetchone()
        if merge is None:
            raise NotFoundError(access.not_shared(f"merge {merge_id}", MERGES_HINT))
        survivor = conn.execute(  # held: an edit in flight is waited for and then seen, not overwritten
            "SELECT list_id, updated_at, opted_out_at FROM leads WHERE id = %s FOR UPDATE", (merge["survivor_id"],)
        ).fetchone()
        lists = [
            r["list_id"] for r in conn.execute("SELECT list_id FROM leads WHERE id = ANY(%s)", (merge["merged_ids"],))
        ]
        access.require_all(  # before anything about the merge is said
            conn, [*([survivor["list_id"]] if survivor else []), *lists], user, "editor",
            "undoing a merge of its leads", subject=f"merge {merge_id}", hint=MERGES_HINT,
        )  # fmt: skip
        if merge["undone_at"] is not None:
            raise ConfigurationError(f"merge {merge_id} was already undone at {merge['undone_at']:%Y-%m-%d %H:%M}")
        if survivor is None:
            raise NotFoundError(f"lead {merge['survivor_id']}, the survivor of merge {merge_id}, no longer exists")
        if survivor["updated_at"] != merge["survivor_after"]:
            raise ConfigurationError(
                f"lead {merge['survivor_id']} changed after merge {merge_id}; undoing it would lose that change"
            )
        columns = [c for c in _lead_columns(conn) if c not in _KEPT_BY_UNDO]
        names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        conn.execute("SELECT set_config('leads.restoring', 'on', true)")  # the saved row as it is (sql/023)
        conn.execute(
            sql.SQL(
                "UPDATE leads SET ({names}) = (SELECT {names} FROM jsonb_populate_record(NULL::leads,"
                " (SELECT survivor_before FROM merges WHERE id = {merge}))) WHERE id = {id}"
            ).format(names=names, merge=sql.Literal(merge_id), id=sql.Literal(merge["survivor_id"]))
        )
        if survivor["opted_out_at"] is not None and survivor["opted_out_at"] > merge["created_at"]:
            conn.execute(  # an opt-out recorded since (it does not touch updated_at) is the person's, not the merge's
                "UPDATE leads SET opted_out_at = %s WHERE id = %s", (survivor["opted_out_at"], merge["survivor_id"])
            )
        conn.execute("DELETE FROM lead_facts WHERE id = ANY(%s)", (merge["added_facts"],))
        moved = merge["moved_facts"]
        conn.execute(
            "UPDATE lead_facts f SET lead_id = m.lead_id FROM unnest(%s::bigint[], %s::bigint[]) AS m(id, lead_id)"
            " WHERE f.id = m.id",
            ([int(k) for k in moved], list(moved.values())),
        )
        conn.execute(
            "DELETE FROM lead_tags WHERE lead_id = %s AND NOT tag = ANY(%s)",
            (merge["survivor_id"], merge["survivor_tags"]),
        )
        restored = conn.execute(
            "UPDATE leads SET deleted_at = NULL, merged_into = NULL WHERE id = ANY(%s) AND merged_into = %s",
            (merge["merged_ids"], merge["survivor_id"]),
        ).rowcount
        conn.execute("UPDATE merges SET undone_at = now() WHERE id = %s", (merge_id,))
        audit.record(
            conn,
            user,
            "leads.merge-undo",
            f"merge:{merge_id}",
            audit.lead_ids([merge["survivor_id"], *merge["merged_ids"]]),
        )
    return {"mergeId": merge_id, "survivorId": merge["survivor_id"], "restored": restored}


def list_merges(conn: Connection, user: str, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
    """Recent merges of leads in lists the user can read (older than merge ``before``), newest first."""
    readable = access.readable_list_ids(conn, user)
    return list(
        conn.execute(
            "SELECT m.id, m.survivor_id, m.merged_ids, m.filled, m.reasons, m.score, m.created_by, m.created_at,"
            " m.undone_at FROM merges m JOIN leads l ON l.id = m.survivor_id WHERE l.list_id = ANY(%(lists)s)"
            " AND (%(before)s::bigint IS NULL OR m.id < %(before)s) ORDER BY m.id DESC LIMIT %(limit)s",
            {"lists": readable, "limit": limit, "before": before},
        )
    )
