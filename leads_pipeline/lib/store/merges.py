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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

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


def merge_cluster(conn: Connection, lead_ids: list[int], user: str, *, reasons: list[str], score: float) -> MergeResult:
    """Merge the leads into one survivor in one transaction (editor on every list involved); see module doc.

    The role is checked first, on the lists of all the leads, live or deleted (an id no lead has is refused as
    a lead not shared): only then is anyone told that fewer than two of them are live."""
    subject = f"leads {', '.join(map(str, lead_ids))}"
    with conn.transaction():
        hold_lists_of(conn, lead_ids)
        rows = list(
            conn.execute(
                "SELECT *, custom::text AS custom_sealed FROM leads WHERE id = ANY(%s) AND deleted_at IS NULL"
                " ORDER BY id FOR UPDATE",
                (lead_ids,),
            )
        )
        held = {
            r["id"]: r["list_id"] for r in conn.execute("SELECT id, list_id FROM leads WHERE id = ANY(%s)", (lead_ids,))
        }
        if set(lead_ids) - set(held):
            raise AccessDeniedError(access.not_shared(subject))
        access.require_all(conn, list(held.values()), user, "editor", "merging its leads", subject=subject)
        if len(rows) < 2:
            raise NothingLeftToMerge(
                f"{subject}: fewer than two of them are live; nothing to merge "
                "(run `leads dedupe` again to see the current clusters)"
            )
        ordered = sorted(rows, key=lambda r: (-_completeness(r), r["id"]))
        survivor, others = ordered[0], ordered[1:]
        # as text: the row as stored, its PII still sealed (the connection opens JSON values it loads)
        before = conn.execute(
            "SELECT to_jsonb(l)::text AS row FROM leads l WHERE id = %s", (survivor["id"],)
        ).fetchone()
        tags = [r["tag"] for r in conn.execute("SELECT tag FROM lead_tags WHERE lead_id = %s", (survivor["id"],))]
        assert before is not None
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
        other_ids = [o["id"] for o in others]
        moved = {
            str(r["id"]): r["lead_id"]
            for r in conn.execute(
                "SELECT id, lead_id FROM lead_facts WHERE lead_id = ANY(%s) ORDER BY id", (other_ids,)
            )
        }
        conn.execute("UPDATE lead_facts SET lead_id = %s WHERE lead_id = ANY(%s)", (survivor["id"], other_ids))
        added = [
            r["id"]
            for r in conn.execute(
                "INSERT INTO lead_facts (lead_id, field, value, source, confidence, details)"
                " SELECT %s, f.field, f.value, %s, %s, jsonb_build_object('from_lead', f.from_lead)"
                " FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS f(field, value, from_lead) RETURNING id",
                (
                    survivor["id"],
                    MERGE_SOURCE,
                    _MERGE_CONFIDENCE,
                    list(filled),
                    [seal_fact(f, str(values[f])) if f in values else str(custom[f[7:]]) for f in filled],
                    list(filled.values()),
                ),
            )
        ]
        stored: dict[str, Any] = {}
        for name, value in values.items():
            stored.update(lead_columns(name, value) if name in SEALED_FIELDS else {name: value})
        assignments = [sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in stored.items()]
        assignments.append(sql.SQL("custom = {}::jsonb").format(sql.Literal(json.dumps(custom))))
        opted = [r["opted_out_at"] for r in rows if r["opted_out_at"] is not None]
        if opted and survivor["opted_out_at"] is None:  # one person: an opt-out of any of the leads is theirs
            assignments.append(sql.SQL("opted_out_at = {}").format(sql.Literal(min(opted))))
        after = conn.execute(
            sql.SQL("UPDATE leads SET {}, updated_at = clock_timestamp() WHERE id = {} RETURNING updated_at").format(
                sql.SQL(", ").join(assignments), sql.Literal(survivor["id"])
            )
        ).fetchone()
        assert after is not None
        conn.execute(
            "INSERT INTO lead_tags (lead_id, tag) SELECT %s, tag FROM lead_tags WHERE lead_id = ANY(%s)"
            " ON CONFLICT DO NOTHING",
            (survivor["id"], other_ids),
        )
        conn.execute(
            "UPDATE leads SET deleted_at = now(), merged_into = %s WHERE id = ANY(%s)", (survivor["id"], other_ids)
        )
        record = conn.execute(
            "INSERT INTO merges (survivor_id, merged_ids, survivor_before, survivor_after, survivor_tags,"
            " moved_facts, added_facts, filled, reasons, score, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                survivor["id"],
                other_ids,
                before["row"],
                after["updated_at"],
                tags,
                json.dumps(moved),
                added,
                json.dumps(filled),
                json.dumps(reasons),
                score,
                user,
            ),
        ).fetchone()
        assert record is not None
        audit.record(
            conn,
            user,
            "leads.merge",
            f"merge:{record['id']}",
            {"survivorId": survivor["id"], **audit.lead_ids(lead_ids)},
        )
    return MergeResult(record["id"], survivor["id"], other_ids, filled, len(moved))


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
