"""Imports in the database: the import record, the set-based merge of a prepared chunk, history and undo.

Each chunk is merged in one transaction that also advances the import's progress, so a crash leaves whole
chunks or nothing, and a re-run continues at the first chunk not yet committed. The merge's helpers load the
import's preparation (pandas, pyarrow) where they use it: the history and undo need neither. The process running
an import holds its lock (``claim_import``, ``lib/store/liveness``): one recorded as processing whose lock is free
was killed and reads as ``interrupted``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from psycopg import sql

from leads_pipeline.lib.errors import NotFoundError, PermanentError
from leads_pipeline.lib.fields import (
    CONTACT_KEYS,
    MATCH_COLUMNS,
    MATCH_KEYS,
    PHONE_EXTENSIONS,
    STORED_COLUMNS,
    DedupeKey,
)
from leads_pipeline.lib.privacy.crypto import SEALED_FIELDS
from leads_pipeline.lib.store import access, liveness, privacy, search_index, staging
from leads_pipeline.lib.store.db import key_column, storable_text
from leads_pipeline.lib.store.lists import Connection, lock_for_adding
from leads_pipeline.lib.wording import counted

if TYPE_CHECKING:
    from leads_pipeline.lib.prepare import OnDuplicate, Problem, StagedChunk

_JSON_PAIRS_PER_CALL = 40  # jsonb_build_object takes at most 100 arguments

MERGE_SESSION = {"temp_buffers": "128MB", "work_mem": "64MB"}
"""Settings of the connection that merges an import's chunks. A 50k-row chunk stages ~30 MB: with the 8 MB
default of temporary buffers every pass over the staging table (the matches, the insert) reads it back from the
operating system, and the insert's sort by row number spills to disk with the 4 MB default of work_mem."""


@dataclass(frozen=True)
class ChunkCounts:
    imported: int
    updated: int
    skipped: int
    errors: int
    warnings: int


IMPORTS_HINT: Final = "`leads imports list` lists yours"
"""Where the refusal of an import that is not found or not shared points the user."""

_ALIVE: Final = sql.SQL("{} AS alive").format(liveness.alive(liveness.IMPORT, sql.SQL("i.id")))


def claim_import(keeper: Connection, import_id: int, dagster_run_id: str | None = None) -> None:
    """Hold the lock of the import (``liveness.IMPORT``) on ``keeper``'s session while this process runs it: the
    server drops it with the process however that ends (SIGKILL, a power cut), and the import, left processing,
    reads as interrupted (``_now``). Raises ``PermanentError`` when another process holds it: two runs of one
    import would both prepare every chunk, and only one could merge it. Once held, the import records the Dagster
    run running it (``dagster_run_id``, None outside one; sql/126): the run that was killed when the import reads
    interrupted, which a run that has not reached the lock yet is not (``inbox_sensor``)."""
    if not liveness.claim(keeper, liveness.IMPORT, import_id):
        raise PermanentError(
            f"import {import_id} is still running in another process: `leads imports show {import_id}` follows it"
        )
    keeper.execute("UPDATE imports SET dagster_run_id = %s WHERE id = %s", (dagster_run_id, import_id))


def _now(row: dict[str, Any]) -> dict[str, Any]:
    """The import of a row read with ``_ALIVE``, whose status is ``interrupted`` if it is recorded as processing
    but no process holds its lock (killed outright, the machine went down): it will never end on its own. Its
    counts are those of the chunks it committed."""
    row["status"] = liveness.status(row["status"], ("processing",), row.pop("alive"))
    return row


def find_import(conn: Connection, import_id: int) -> dict[str, Any]:
    """The import, with its status as it is now (``_now``)."""
    row = conn.execute(sql.SQL("SELECT i.*, {} FROM imports i WHERE i.id = %s").format(_ALIVE), (import_id,))
    found = row.fetchone()
    if found is None:
        raise NotFoundError(access.not_shared(f"import {import_id}", IMPORTS_HINT))
    return _now(found)


def import_for_batch(conn: Connection, batch_id: str) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM imports WHERE batch_id = %s", (batch_id,)).fetchone()


def unfinished_import(conn: Connection, list_id: int, sha256: str) -> dict[str, Any] | None:
    """An import of the same file into the same list that stopped before the end (to resume, not restart):
    failed, interrupted, or still running (``_now``)."""
    row = conn.execute(
        sql.SQL(
            "SELECT i.*, {} FROM imports i WHERE i.list_id = %s AND i.file_sha256 = %s"
            " AND i.status IN ('processing', 'failed') ORDER BY i.id DESC LIMIT 1"
        ).format(_ALIVE),
        (list_id, sha256),
    ).fetchone()
    return None if row is None else _now(row)


def inbox_sensor_state(conn: Connection, generation: int) -> dict[str, Any] | None:
    """The drop folder sensor's state of that generation (sql/150); None once it is gone."""
    row = conn.execute("SELECT state FROM inbox_sensor_state WHERE generation = %s", (generation,)).fetchone()
    return None if row is None else dict(row["state"])


def save_inbox_sensor_state(conn: Connection, state: Mapping[str, Any], previous: int | None) -> int:
    """Store the sensor's state as a new generation and return it. The generations before ``previous`` (the one
    its tick started from, where a tick Dagster never recorded starts again) are deleted, not the ones after it:
    the UI's "test sensor" evaluates a tick from the recorded cursor and stores a generation nobody records, and
    when it ended after a real tick it deleted the real tick's generation (all but its own and its start), so the
    next tick started afresh, every file unseen."""
    row = conn.execute(
        "INSERT INTO inbox_sensor_state (state) VALUES (%s::jsonb) RETURNING generation", (json.dumps(state),)
    ).fetchone()
    assert row is not None
    if previous is not None:
        conn.execute("DELETE FROM inbox_sensor_state WHERE generation < %s", (previous,))
    return int(row["generation"])


def completed_import_of_file(conn: Connection, list_id: int, sha256: str) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT * FROM imports WHERE list_id = %s AND file_sha256 = %s AND status = 'completed' LIMIT 1",
        (list_id, sha256),
    ).fetchone()


def create_batch(conn: Connection, batch_id: str, kind: str, list_id: int | None, description: str) -> None:
    conn.execute(
        "INSERT INTO batches (id, kind, list_id, description) VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
        (batch_id, kind, list_id, description),
    )


def start_import(
    conn: Connection,
    *,
    batch_id: str,
    list_id: int,
    file_path: str,
    sha256: str,
    size: int,
    mapping: dict[str, str | None],
    options: dict[str, Any],
    dialect: dict[str, Any],
    chunk_rows: int,
    total_rows: int,
    user: str,
) -> dict[str, Any]:
    """The import record of ``batch_id``: created on first call, set back to processing on a resume. An import
    undone is not resumed: its leads are gone, and the chunks it had committed would not be imported again."""
    file_path = storable_text(file_path)
    create_batch(conn, batch_id, "import", list_id, f"import of {file_path}")
    row = conn.execute(
        "INSERT INTO imports (batch_id, list_id, file_path, file_sha256, file_size, mapping, options, dialect,"
        " chunk_rows, total_rows, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (batch_id) DO UPDATE SET status = CASE WHEN imports.status = 'failed' THEN 'processing'"
        " ELSE imports.status END, failure = NULL RETURNING *",
        (
            batch_id,
            list_id,
            file_path,
            sha256,
            size,
            json.dumps(mapping),
            json.dumps(options),
            json.dumps(dialect),
            chunk_rows,
            total_rows,
            user,
        ),
    ).fetchone()
    assert row is not None
    if row["status"] == "undone":  # undone while this run started: the file is imported anew as a new batch
        raise PermanentError(
            f"{file_path}: import {row['id']} was undone; nothing was written: import the file again to import it"
            " as a new import"
        )
    if row["file_sha256"] != sha256:
        raise PermanentError(
            f"{file_path}: the file changed since import {row['id']} began (sha256 differs); "
            "import it as a new batch instead of resuming"
        )
    search_index.create_partition(conn, int(row["id"]))
    return row


def _staging_ddl(chunk: StagedChunk) -> sql.Composed:
    return sql.SQL("CREATE TEMP TABLE stg ({}) ON COMMIT DROP").format(staging.definitions(chunk))


def _custom_json(chunk: StagedChunk) -> sql.Composable:
    """SQL building a staged row's custom JSON (original header -> value) from its unmapped and moved columns."""
    columns = chunk.custom_columns
    if not columns:
        return sql.SQL("'{}'::jsonb")
    pairs = [
        sql.SQL("{}, s.{}").format(sql.Literal(chunk.custom_headers[name]), sql.Identifier(name)) for name in columns
    ]
    calls = [
        sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs[i : i + _JSON_PAIRS_PER_CALL]))
        for i in range(0, len(pairs), _JSON_PAIRS_PER_CALL)
    ]
    return sql.SQL("jsonb_strip_nulls({})").format(sql.SQL(" || ").join(calls))


def _copy_staged(conn: Connection, table: str, columns: list[str], data: bytes) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        copy.write(data)


def _match(conn: Connection, list_id: int, dedupe: DedupeKey) -> tuple[int, int]:
    """Point each staged row at the existing lead it duplicates (:func:`_match_rows`); returns how many rows found
    one and how many of them found the lead of an earlier row (``dup``)."""
    matched = _match_rows(conn, list_id, dedupe, "stg")
    if not matched:  # a chunk of new leads (the usual case of a first import) has nothing more to mark
        return 0, 0
    # Two rows of the chunk matching one lead: only the first (in file order) is merged now.
    dups = conn.execute(
        "UPDATE stg s SET dup = true FROM ("
        " SELECT row_number, row_number() OVER (PARTITION BY lead_id ORDER BY row_number) AS nth"
        " FROM stg WHERE lead_id IS NOT NULL) d"
        " WHERE d.row_number = s.row_number AND d.nth > 1"
    ).rowcount
    return matched, dups


def _match_rows(conn: Connection, list_id: int, dedupe: DedupeKey, table: str) -> int:
    """Point each row of ``table`` (``stg`` or ``stg_rows``) at the existing lead it duplicates, trying the list's
    keys in order; returns how many rows found one (each statement sets only rows still unmatched, so their row
    counts add up)."""
    primary = [MATCH_COLUMNS[k] for k in MATCH_KEYS[dedupe]]  # sealed keys compare by their blind index
    no_primary = sql.SQL(" AND ").join(sql.SQL("s.{} IS NULL").format(sql.Identifier(k)) for k in primary)
    steps: list[tuple[str, sql.Composable, sql.Composable]] = [
        (key, sql.SQL("TRUE"), key_column(key, "s")) for key in primary
    ]
    # A row without the list's key is matched by the other contact key, then by LinkedIn URL, then by name.
    steps.extend(
        (MATCH_COLUMNS[key], no_primary, key_column(MATCH_COLUMNS[key], "s"))
        for key in CONTACT_KEYS
        if MATCH_COLUMNS[key] not in primary
    )
    steps.append(("linkedin_url", no_primary, key_column("linkedin_url", "s")))
    from leads_pipeline.lib.normalize import LINKEDIN_MEMBER_ID

    # A LinkedIn member id ("/in/ACoAA...", lib/normalize.py) was lower-cased by earlier imports (and sql/043): a
    # lead stored so (its case is lost for good) is the lead of the same id written with its case, and
    # ``--on-duplicate update`` gives it the working URL back. Two members whose ids differ only in case are a
    # risk only in theory (the ids are ~39 random base64 characters).
    member = sql.SQL("s.linkedin_url <> lower(s.linkedin_url) AND s.linkedin_url ~ {}").format(
        sql.Literal("^https://www\\.linkedin\\.com/in/" + LINKEDIN_MEMBER_ID.removeprefix("^"))
    )
    steps.append(("linkedin_url", no_primary + sql.SQL(" AND ") + member, sql.SQL("lower(s.linkedin_url)")))
    # One index scan per key for the whole chunk: the chunk's keys go in as an array (PostgreSQL 18 walks the
    # (list_id, key) index once for all of them, skipping between leaf pages) and each key takes the list's
    # oldest live lead. The scan sits behind an OFFSET 0 fence with deleted leads filtered outside it, so the
    # planner has no reason to reach the list's leads in id order instead: on stale statistics (a new list, a
    # table never analyzed) it once did so through a (list_id, id) index of live leads (since dropped) and read
    # the whole list per key, and a join planned on such statistics once became a 50k x 50k nested loop. Only
    # rows that found a lead are rewritten. (Per 50k-row chunk against a 1M-lead list: 0.23 s where half the rows
    # match, 0.13 s where none does; a correlated probe per row took 0.78 s and 0.21 s. A hash index of the keys
    # cannot serve this scan: it rechecks each match against the whole array, 100 s for 25k matches; README.)
    matched = 0
    for key, guard, staged_key in steps:
        matched += conn.execute(
            sql.SQL(
                "UPDATE {table} s SET lead_id = m.id FROM ("
                " SELECT DISTINCT ON (k.key) k.key, k.id FROM (SELECT l.id, {lead_key} AS key, l.deleted_at"
                " FROM leads l WHERE l.list_id = {list} AND {lead_key} = ANY(ARRAY("
                "SELECT {staged_key} FROM {table} s WHERE s.lead_id IS NULL AND s.{key} IS NOT NULL AND {guard}))"
                " OFFSET 0) k WHERE k.deleted_at IS NULL ORDER BY k.key, k.id) m"
                " WHERE {staged_key} = m.key AND s.lead_id IS NULL AND {guard}"
            ).format(
                table=sql.Identifier(table),
                key=sql.Identifier(key),
                lead_key=key_column(key, "l"),
                staged_key=staged_key,
                list=sql.Literal(list_id),
                guard=guard,
            )
        ).rowcount
    # Then by name + company: also a row whose LinkedIn URL found no lead, but not to a lead with another URL.
    return matched + _match_by_name(conn, list_id, no_primary, table)


def _match_by_name(conn: Connection, list_id: int, guard: sql.Composable, table: str) -> int:
    """The last way to a duplicate, by name and company (``name_key``), looked up in the search rows
    (:func:`search_index.leads_by_name`). Most files give every row an email, and then nothing is read. A row with a
    LinkedIn URL (one that found no lead) takes only a lead without one: a lead with another URL is another person
    of the same name. Returns how many rows found a lead."""
    wanted = sql.SQL("SELECT s.name_key FROM {} s WHERE s.lead_id IS NULL AND s.name_key IS NOT NULL AND {}").format(
        sql.Identifier(table), guard
    )
    needed = conn.execute(sql.SQL("SELECT EXISTS ({}) AS needed").format(wanted)).fetchone()
    if not needed or not needed["needed"]:
        return 0
    # The matches are written down before stg is updated from them: planned as one statement, the hash join
    # over a filling partition left the planner expecting one match, and it joined stg to the matches by a
    # nested loop (50k rows: 291 s instead of 0.7 s).
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE name_match ON COMMIT DROP AS SELECT l.name_key, min(l.id) AS id,"
            " min(l.id) FILTER (WHERE l.linkedin_url IS NULL) AS bare_id"
            " FROM ({} OFFSET 0) x JOIN leads l ON l.id = x.lead_id WHERE l.deleted_at IS NULL GROUP BY l.name_key"
        ).format(search_index.leads_by_name(conn, list_id, wanted))
    )
    matched = conn.execute(
        sql.SQL(
            "UPDATE {} s SET lead_id = CASE WHEN s.linkedin_url IS NULL THEN m.id ELSE m.bare_id END"
            " FROM name_match m WHERE s.name_key = m.name_key AND s.lead_id IS NULL AND {}"
            " AND (s.linkedin_url IS NULL OR m.bare_id IS NOT NULL)"
        ).format(sql.Identifier(table), guard)
    ).rowcount
    conn.execute("DROP TABLE name_match")
    return matched


def _key_columns(key: str) -> list[str]:
    """The staged columns a dedupe key's value fills: the key, its blind index, a phone's extension, an email's
    domain (what a row whose key another lead holds does not write)."""
    extension = [PHONE_EXTENSIONS[key]] if key in PHONE_EXTENSIONS else []
    return [key, MATCH_COLUMNS[key], *extension, *(["email_domain"] if key == "email" else [])]


def _keep_keys_of_other_leads(
    conn: Connection, list_id: int, dedupe: DedupeKey, mapping: Mapping[str, str | None], folds: bool
) -> tuple[list[Problem], dict[str, list[int]]]:
    """In a list deduplicated by email and phone, a row that found its lead by one key must not give it the other
    when another live lead of the list has it: the update would leave two leads sharing a dedupe key. That key is
    not written (the lead keeps its own; the rest of the row is), and a warning says which lead has it. A fold
    (``folds``: ``stg_rows``) that found a stored lead holds only its last row's key: the warnings are its rows'
    own, each row's key checked as it was read, as a row per chunk. Returns the warnings, and per key the rows of
    folds whose key another lead holds (which :func:`_overcounted` counts as not written)."""
    if len(MATCH_KEYS[dedupe]) < 2:
        return [], {}
    header_of = {field: column for column, field in mapping.items() if field is not None}
    problems: list[Problem] = []
    held_in_folds: dict[str, list[int]] = {}
    trees = {row["tree"] for row in conn.execute("SELECT DISTINCT tree FROM stg_rows")} if folds else set()
    for key in MATCH_KEYS[dedupe]:
        column = MATCH_COLUMNS[key]
        held = _other_leads_holding(
            conn,
            list_id,
            column,
            sql.SQL("SELECT row_number, lead_id, {} FROM stg WHERE lead_id IS NOT NULL AND NOT dup").format(
                sql.Identifier(column)
            ),
        )
        warned = held
        if folds:
            in_folds = _other_leads_holding(
                conn,
                list_id,
                column,
                sql.SQL(
                    "SELECT r.row_number, f.lead_id, r.{} FROM stg_rows r JOIN stg f"
                    " ON f.row_number = r.tree AND f.lead_id IS NOT NULL AND NOT f.dup"
                ).format(sql.Identifier(column)),
            )
            if in_folds:
                held_in_folds[key] = [row["row_number"] for row in in_folds]
            warned = [row for row in held if row["row_number"] not in trees] + in_folds
        if held:
            conn.execute(
                sql.SQL("UPDATE stg SET {} WHERE row_number = ANY({})").format(
                    sql.SQL(", ").join(sql.SQL("{} = NULL").format(sql.Identifier(c)) for c in _key_columns(key)),
                    sql.Literal([row["row_number"] for row in held]),
                )
            )
        problems.extend(_held_key_problems(warned, key, header_of))
    return problems, held_in_folds


def _other_leads_holding(conn: Connection, list_id: int, column: str, rows: sql.Composable) -> list[dict[str, Any]]:
    """The rows of ``rows`` (a query of staged rows' ``row_number``, the ``lead_id`` they found and their key
    ``column``) whose key another live lead of the list holds, each with that lead's id (the lowest). The list's
    leads are looked up by the rows' keys as one array behind an OFFSET 0 fence, as the duplicate lookups are."""
    return conn.execute(
        sql.SQL(
            "WITH r AS NOT MATERIALIZED ({rows}) SELECT DISTINCT ON (r.row_number) r.row_number, m.id FROM r JOIN ("
            " SELECT l.id, {lead_key} AS key, l.deleted_at FROM leads l WHERE l.list_id = {list} AND {lead_key}"
            " = ANY(ARRAY(SELECT r.{col} FROM r WHERE r.{col} IS NOT NULL)) OFFSET 0) m ON m.key = {staged_key}"
            " WHERE m.deleted_at IS NULL AND m.id <> r.lead_id ORDER BY r.row_number, m.id"
        ).format(
            rows=rows,
            col=sql.Identifier(column),
            lead_key=key_column(column, "l"),
            staged_key=key_column(column, "r"),
            list=sql.Literal(list_id),
        )
    ).fetchall()


def _held_key_problems(held: list[dict[str, Any]], key: str, header_of: Mapping[str, str]) -> list[Problem]:
    from leads_pipeline.lib.prepare import Problem

    return [
        Problem(
            row["row_number"],
            header_of.get(key),
            None,
            f"{key} not written: lead {row['id']} of the list (deduplicated by email and phone) has it",
            "warning",
        )
        for row in held
    ]


_EXTENSION_OF: dict[str, str] = {ext: phone for phone, ext in PHONE_EXTENSIONS.items()}


def _written(name: str, full_name_mapped: bool) -> sql.Composable:
    """When a staged row writes column ``name``: when it has a value, except for a phone's extension, written
    (empty or not) with its phone so that an old number's extension never stays on a new number, and for a full
    name the file has no column of: it is only the row's first and last name joined, so it fills an empty full
    name and otherwise the lead's follows its merged names (sql/021); a row with a new last name alone does not
    make the full name that last name. A name the row keeps whole in the last name with no first name (山田花子, a
    Japanese one, which the import does not split) that is the lead's first and last name joined (花子 and 山田)
    brings nothing: written, it left 花子 / 山田花子, whose full name followed as 山田花子花子."""
    if name == "full_name" and not full_name_mapped:
        return sql.SQL("(s.full_name IS NOT NULL AND l.full_name IS NULL)")
    if name == "last_name":
        return sql.SQL(
            "(s.last_name IS NOT NULL AND NOT (s.first_name IS NULL AND l.first_name IS NOT NULL"
            " AND s.last_name = lead_full_name(l.first_name, l.last_name)))"
        )
    return sql.SQL("s.{} IS NOT NULL").format(sql.Identifier(_EXTENSION_OF.get(name, name)))


def _changed(custom: sql.Composable, full_name_mapped: bool) -> sql.Composable:
    # Sealed values differ at every sealing: their blind indexes say whether the value changed.
    compared = [
        sql.SQL("({w} AND s.{c} IS DISTINCT FROM l.{c})").format(
            w=_written(name, full_name_mapped), c=sql.Identifier(name)
        )
        for name in STORED_COLUMNS
        if name not in SEALED_FIELDS
    ]
    compared.append(sql.SQL("NOT (l.custom @> {})").format(custom))
    return sql.SQL("(") + sql.SQL(" OR ").join(compared) + sql.SQL(")")


def _update_existing(conn: Connection, import_id: int, custom: sql.Composable, full_name_mapped: bool) -> int:
    assignments = [
        sql.SQL("{c} = CASE WHEN {w} THEN s.{c} ELSE l.{c} END").format(
            w=_written(name, full_name_mapped), c=sql.Identifier(name)
        )
        if name in _EXTENSION_OF or name in ("full_name", "last_name")
        else sql.SQL("{c} = coalesce(s.{c}, l.{c})").format(c=sql.Identifier(name))
        for name in STORED_COLUMNS
    ]
    statement = sql.SQL(
        "WITH saved AS ("
        " INSERT INTO import_updates (import_id, lead_id, previous)"
        " SELECT {imp}, l.id, to_jsonb(l) FROM leads l JOIN stg s ON s.lead_id = l.id AND NOT s.dup"
        " WHERE l.created_by_import IS DISTINCT FROM {imp} AND {changed}"
        " ON CONFLICT DO NOTHING)"
        " UPDATE leads l SET {assignments}, custom = l.custom || {custom}, updated_at = now()"
        " FROM stg s WHERE s.lead_id = l.id AND NOT s.dup AND {changed}"
    ).format(
        imp=sql.Literal(import_id),
        changed=_changed(custom, full_name_mapped),
        custom=custom,
        assignments=sql.SQL(", ").join(assignments),
    )
    return conn.execute(statement).rowcount


def _overcounted(
    conn: Connection, chunk: StagedChunk, held_in_folds: Mapping[str, list[int]], changing_into: Mapping[int, int],
    custom: sql.Composable, full_name_mapped: bool,
) -> int:  # fmt: skip
    """How many more rows the folds that found a stored lead (``--on-duplicate update``) would count as updated
    than merged a row per chunk: a fold counts its first row as an update when the fold changes the lead, and each
    later row that brought a value no earlier row of the fold held, whatever the stored lead held. Counted a row
    at a time instead (``stg_rows``): a row changes the lead when it overwrites a value an earlier row of its fold
    brought (``changes``, prepare), or writes a value no earlier one brought and the stored lead does not hold
    (each column an earlier row wrote is left out of the comparison with the lead, and so is a dedupe key another
    lead holds, in the rows ``held_in_folds`` names: :func:`_keep_keys_of_other_leads` does not write it, and found
    them; looked up again here by a probe of the list's leads per row and key column, they cost ~0.45 s of server
    CPU per 100k rows). Asked before the update; only the chunk's folds that found a stored lead are read."""
    held: dict[str, sql.Composable] = {}  # per column, when a row's value of it is not written
    for key, rows in held_in_folds.items():
        for name in _key_columns(key):
            held[name] = sql.SQL("r.row_number = ANY({})").format(sql.Literal(rows))
    counted = [
        sql.SQL("CASE WHEN count(r.{}) OVER earlier = 0 AND NOT {} THEN r.{} END AS {}").format(
            sql.Identifier(_EXTENSION_OF.get(name, name)),
            held.get(name, sql.SQL("false")),
            sql.Identifier(name),
            sql.Identifier(name),
        )
        for name in (*STORED_COLUMNS, *chunk.custom_columns)
    ]
    changed = _changed(custom, full_name_mapped)
    # The fold's own comparison with its lead rides on its first row (whose row number is the fold's), so the
    # counts per fold are not joined back to stg: planned expecting 200 folds, that join was a nested loop over
    # every fold and staged row (a 50k-row chunk of 14k folds compared 160M pairs: ~3.5 s of a ~7 s merge).
    folds = conn.execute(
        sql.SQL(
            "WITH rows_read AS (SELECT r.tree, r.changes, s.lead_id,"
            " CASE WHEN r.row_number = r.tree THEN {changed} END AS fold_changes, {counted} FROM stg_rows r"
            " JOIN stg s ON s.row_number = r.tree AND s.lead_id IS NOT NULL AND NOT s.dup"
            " JOIN leads l ON l.id = s.lead_id"
            " WINDOW earlier AS (PARTITION BY r.tree ORDER BY r.row_number"
            " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))"
            " SELECT s.tree AS row_number, bool_or(s.fold_changes) AS changed,"
            " count(*) FILTER (WHERE s.changes OR {changed}) AS rows_changing"
            " FROM rows_read s JOIN leads l ON l.id = s.lead_id GROUP BY s.tree"
        ).format(counted=sql.SQL(", ").join(counted), changed=changed)
    ).fetchall()
    return sum(
        int(fold["changed"]) + changing_into.get(fold["row_number"], 0) - int(fold["rows_changing"]) for fold in folds
    )


def _unfold_tangled(conn: Connection, list_id: int, dedupe: DedupeKey, found: int) -> tuple[dict[int, int], set[int]]:
    """On update, after the match: put back as read the folds whose rows do not find the list's leads as the fold
    does. A chunk's rows are folded when it is prepared (``prepare._dedupe_within``), without the list's leads: a
    fold's rows are the lead of its first row, which the fold finds. That holds as long as the first row finds the
    lead the fold found (or none, as it), every other row finds that lead or none, and no other staged row finds
    it between the fold's first and last rows: not when the fold found a stored lead by a key a later row brought
    (a row per chunk the first row makes a lead, the later row finds it by its own key), nor when a row finds
    another stored lead, nor when a row between them (of the chunk or of another fold, as read) changes the lead
    the fold's later rows find it by, nor when such a row gives another stored lead a key a later row of the fold
    has (that lead is older than the fold's new one), nor when a later row could have joined the fold only by name
    and the fold found a stored lead with another LinkedIn URL. The rows (``stg_rows``, matched here as they were
    read) of such a fold are merged one by one instead, a row of the fold per round
    (:func:`_wait_from_first_duplicate`). ``found``: how many staged rows found a stored lead. Returns the size of
    each fold put back, by its row number, and the row numbers of its rows."""
    conn.execute("UPDATE stg_rows SET lead_id = NULL WHERE lead_id IS NOT NULL")
    if not _match_rows(conn, list_id, dedupe, "stg_rows") and not found:  # no row of the chunk found a lead
        return {}, set()
    # A row of the chunk that found another stored lead gives it its keys before a later row of the fold is
    # read, which then finds that lead by such a key where it is older than the fold's (the name a row gave a
    # stored lead finds it before the fold's new lead of that name).
    # (A row with one of the list's keys looks by them alone.)
    keys = [*dict.fromkeys(MATCH_COLUMNS.values())]
    primary = [MATCH_COLUMNS[k] for k in MATCH_KEYS[dedupe]]
    bare = sql.SQL(" AND ").join(sql.SQL("f.{} IS NULL").format(sql.Identifier(k)) for k in primary)
    given = sql.SQL(" UNION ").join(
        sql.SQL(
            "SELECT f.tree FROM stg_rows f JOIN stg t ON t.row_number = f.tree JOIN found o ON {o} = {f}"
            " WHERE f.row_number > f.tree AND o.row_number < f.row_number AND o.tree IS DISTINCT FROM f.tree"
            " AND o.lead_id IS DISTINCT FROM t.lead_id AND {looks}"
        ).format(o=key_column(key, "o"), f=key_column(key, "f"), looks=sql.SQL("TRUE") if key in primary else bare)
        for key in keys
    )
    # A later row with a LinkedIn URL and none of the list's keys may have joined the fold by name, which finds
    # no lead with another URL: a stored lead's.
    other_url = sql.SQL(
        "SELECT f.tree FROM stg_rows f JOIN stg t ON t.row_number = f.tree JOIN leads l ON l.id = t.lead_id"
        " WHERE f.row_number > f.tree AND {} AND l.linkedin_url <> f.linkedin_url"
    ).format(bare)
    trees = conn.execute(
        sql.SQL(
            "WITH found AS (SELECT r.row_number, r.tree, coalesce(r.lead_id, s.lead_id) AS lead_id, {read}"
            " FROM stg_rows r JOIN stg s ON s.row_number = r.tree WHERE coalesce(r.lead_id, s.lead_id) IS NOT NULL"
            " UNION ALL SELECT s.row_number, s.tree, s.lead_id, {staged} FROM stg s WHERE s.lead_id IS NOT NULL"
            " AND NOT EXISTS (SELECT FROM stg_rows r WHERE r.tree = s.row_number))"
            " SELECT r.tree FROM stg_rows r JOIN stg s ON s.row_number = r.tree"
            " WHERE (r.lead_id IS NOT NULL OR r.row_number = r.tree) AND r.lead_id IS DISTINCT FROM s.lead_id"
            " UNION SELECT f.tree FROM (SELECT tree, max(row_number) AS last FROM stg_rows GROUP BY tree) f"
            " JOIN stg s ON s.row_number = f.tree JOIN found o ON o.lead_id = s.lead_id"
            " AND o.row_number > f.tree AND o.row_number < f.last AND o.tree IS DISTINCT FROM f.tree"
            " UNION {given} UNION {other_url}"
        ).format(
            read=sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(k)) for k in keys),
            staged=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(k)) for k in keys),
            given=given,
            other_url=other_url,
        )
    ).fetchall()
    if not trees:
        return {}, set()
    roots = [row["tree"] for row in trees]
    conn.execute("DELETE FROM stg WHERE row_number = ANY(%s)", (roots,))
    rows = conn.execute(
        "WITH r AS (DELETE FROM stg_rows WHERE tree = ANY(%s) RETURNING *),"
        " i AS (INSERT INTO stg SELECT * FROM r) SELECT row_number, tree FROM r",
        (roots,),
    ).fetchall()
    sizes: dict[int, int] = {}
    for row in rows:
        sizes[row["tree"]] = sizes.get(row["tree"], 0) + 1
    conn.execute("UPDATE stg SET lead_id = NULL, dup = false")
    return sizes, {row["row_number"] for row in rows}


def _wait_from_first_duplicate(conn: Connection) -> tuple[int, int]:
    """Mark (``dup``) the staged rows from the first one that found the lead of an earlier row (or is not the first
    row left of a fold put back, :func:`_unfold_tangled`) on as waiting for the next round of the merge; returns
    how many of them found a lead and how many wait."""
    conn.execute(
        "UPDATE stg s SET dup = true WHERE s.tree IS NOT NULL"
        " AND s.row_number > (SELECT min(t.row_number) FROM stg t WHERE t.tree = s.tree)"
    )
    row = conn.execute(
        "WITH waiting AS (UPDATE stg SET dup = true WHERE row_number >= (SELECT min(row_number) FROM stg WHERE dup)"
        " RETURNING lead_id) SELECT count(lead_id) AS found, count(*) AS waiting FROM waiting"
    ).fetchone()
    assert row is not None
    return int(row["found"]), int(row["waiting"])


def _settle_duplicates(conn: Connection, duplicate_rows: list[int], dedupe: DedupeKey, *, settled: bool) -> None:
    """On skip, after the match: mark (``dup``) the staged rows that are the lead of an earlier row of the chunk,
    so that they are not inserted. Prepared without the list's leads, they are the leads of the chunk's other rows;
    but a row skipped as the duplicate of a stored lead (or dropped as suppressed) gives no lead its keys, and a row
    found by those keys alone is then no duplicate of it: a row per chunk it is a lead of its own or of a later row.
    So where such a row may be left without a lead (``settled`` is false: a row found a stored lead or was
    dropped), the rows without one are settled again, as prepared, by the keys of those among them that are leads
    (blind indexes: equal values, equal indexes)."""
    if not _mark_duplicates(conn, duplicate_rows) or settled:
        return
    import pandas as pd

    from leads_pipeline.lib.prepare import skipped_duplicates

    keys = {MATCH_COLUMNS[key]: key for key in MATCH_COLUMNS}
    left = pd.DataFrame(
        conn.execute(
            sql.SQL("SELECT row_number, {} FROM stg WHERE lead_id IS NULL ORDER BY row_number").format(
                sql.SQL(", ").join(map(sql.Identifier, keys))
            )
        ).fetchall(),
        columns=["row_number", *keys],
    ).rename(columns=keys)
    skipped = skipped_duplicates(left.astype(dict.fromkeys(keys.values(), "str")), dedupe)
    conn.execute("UPDATE stg SET dup = false WHERE lead_id IS NULL")
    _mark_duplicates(conn, left["row_number"][skipped].tolist())


def _mark_duplicates(conn: Connection, rows: list[int]) -> int:
    """Mark these staged rows (by row number) that found no stored lead as duplicates; returns how many."""
    return conn.execute(
        "UPDATE stg s SET dup = true FROM unnest(%s::integer[]) d(n) WHERE s.row_number = d.n AND s.lead_id IS NULL",
        (rows,),
    ).rowcount


def _insert_new(conn: Connection, import_id: int, list_id: int, custom: sql.Composable) -> int:
    columns = sql.SQL(", ").join(map(sql.Identifier, STORED_COLUMNS))
    selected = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in STORED_COLUMNS)
    statement = sql.SQL(
        "INSERT INTO leads (list_id, {columns}, custom, created_by_import)"
        " SELECT {list}, {selected}, {custom}, {imp} FROM stg s WHERE s.lead_id IS NULL AND NOT s.dup"
        " ORDER BY s.row_number"
    ).format(
        columns=columns,
        selected=selected,
        custom=custom,
        list=sql.Literal(list_id),
        imp=sql.Literal(import_id),
    )
    return conn.execute(statement).rowcount


def _write_problems(conn: Connection, import_id: int, chunk_index: int, problems: Iterable[Problem]) -> None:
    with conn.cursor().copy(
        "COPY import_errors (import_id, chunk, row_number, column_name, value, reason, severity, subjects) FROM STDIN"
    ) as copy:
        for p in problems:  # values arrive sealed and cut to PROBLEM_VALUE_CHARS (prepare.stage_chunk), or None
            copy.write_row(
                (import_id, chunk_index, p.row_number, p.column, p.value, p.reason, p.severity, list(p.subjects))
            )


def open_merge_session(conn: Connection) -> None:
    """Set :data:`MERGE_SESSION` on the connection that will merge chunks, before its first chunk: temporary
    buffers can be sized only before the session first uses a temporary table."""
    with conn.transaction():
        for name, value in MERGE_SESSION.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def merge_chunk(
    conn: Connection,
    *,
    import_id: int,
    batch_id: str,
    list_id: int,
    chunk: StagedChunk,
    dedupe: DedupeKey,
    on_duplicate: OnDuplicate,
) -> ChunkCounts | None:
    """Merge one prepared chunk into the list in the current transaction and advance the import's progress.

    Returns None (and writes nothing) when this chunk was already committed by an earlier or concurrent run.
    """
    from leads_pipeline.lib.prepare import HELD_BY_EARLIER_ROW

    claimed = conn.execute("SELECT chunks_done, mapping FROM imports WHERE id = %s FOR UPDATE", (import_id,)).fetchone()
    if claimed is None or claimed["chunks_done"] != chunk.index:
        return None  # (its staged tables, if any, are dropped when the import ends: staging.clear)
    lock_for_adding(conn, list_id, f"import {import_id}")
    # without a full-name column, the full name a row stages is only its first and last name joined
    full_name_mapped = "full_name" in (claimed["mapping"] or {}).values()
    conn.execute("SET LOCAL synchronous_commit = off")
    conn.execute(_staging_ddl(chunk))
    folds = chunk.folds  # (on update)
    if folds:
        conn.execute("CREATE TEMP TABLE stg_rows (LIKE stg INCLUDING DEFAULTS) ON COMMIT DROP")
    if chunk.staged:
        staging.take(conn, import_id, chunk, ("stg", "stg_rows"))
    else:
        _copy_staged(conn, "stg", chunk.columns, chunk.data)
        if folds:
            _copy_staged(conn, "stg_rows", [*chunk.columns, *staging.FOLD_COLUMNS], chunk.folded_data)
    screening = privacy.screen_staged(conn)
    custom = _custom_json(chunk)
    kept: list[Problem] = []
    problems = chunk.problems
    folded_away, changing, changing_into = chunk.duplicates_in_file, chunk.duplicates_changing, chunk.changing_into
    matched = updated = overcounted = imported = 0
    unfolding = False
    while True:
        found, dups = _match(conn, list_id, dedupe)
        if folds and (unfolded := _unfold_tangled(conn, list_id, dedupe, found))[0]:
            sizes, rows = unfolded
            unfolding = True  # the folds' counts and warnings are the rows' own now
            folded_away -= sum(sizes.values()) - len(sizes)
            changing -= sum(changing_into.get(tree, 0) for tree in sizes)
            changing_into = {tree: n for tree, n in changing_into.items() if tree not in sizes}
            problems = [p for p in problems if p.row_number not in rows or not p.reason.endswith(HELD_BY_EARLIER_ROW)]
            # the fold was screened by its own keys: a row's that a later one overwrote in it are screened now
            again = privacy.screen_staged(conn)
            screening = privacy.Screening(
                [*screening.suppressed, *again.suppressed], sorted({*screening.opted_out, *again.opted_out})
            )
            found, dups = _match(conn, list_id, dedupe)
        if chunk.duplicate_rows:  # (on skip)
            _settle_duplicates(conn, chunk.duplicate_rows, dedupe, settled=not found and not screening.suppressed)
        # On update, a later row that found the lead an earlier one found (by another key: rows sharing one were
        # folded when the chunk was prepared) waits for a next round, matched again against the lead the earlier
        # one updated, as in a later chunk, and so do the rows after it: the leads they create or update must not
        # be there yet when it is matched again. On skip it is skipped with the earlier one.
        deferred = waiting = 0
        if (dups or unfolding) and on_duplicate == "update":
            deferred, waiting = _wait_from_first_duplicate(conn)
        matched += found - deferred
        if found and on_duplicate == "update":
            warned, held_in_folds = _keep_keys_of_other_leads(conn, list_id, dedupe, claimed["mapping"] or {}, folds)
            kept += warned
            if folds:
                overcounted += _overcounted(conn, chunk, held_in_folds, changing_into, custom, full_name_mapped)
            updated += _update_existing(conn, import_id, custom, full_name_mapped)
        imported += _insert_new(conn, import_id, list_id, custom)
        if found:  # the leads it created are the batch's by leads.created_by_import
            conn.execute(
                "INSERT INTO batch_leads (batch_id, lead_id) SELECT DISTINCT %s, lead_id FROM stg"
                " WHERE lead_id IS NOT NULL AND (NOT dup OR %s) ON CONFLICT DO NOTHING",
                (batch_id, on_duplicate == "skip"),
            )
        if not waiting:
            break
        conn.execute("DELETE FROM stg WHERE NOT dup")
        conn.execute("UPDATE stg SET lead_id = NULL, dup = false")
        if folds:  # the folds merged
            conn.execute("DELETE FROM stg_rows r WHERE NOT EXISTS (SELECT FROM stg s WHERE s.row_number = r.tree)")
    privacy.flag_opted_out(conn, screening, [list_id])
    if on_duplicate == "skip":  # every staged row that was not suppressed nor made a lead
        skipped = chunk.lead_count - len(screening.suppressed) - imported
    else:
        skipped = matched - updated + folded_away - changing + overcounted
    counts = ChunkCounts(
        imported=imported,
        updated=updated + changing - overcounted,
        skipped=skipped,
        errors=chunk.rejected + len(screening.suppressed),
        warnings=sum(1 for p in problems if p.severity == "warning") + len(kept),
    )
    _write_problems(conn, import_id, chunk.index, [*problems, *kept, *screening.suppressed])
    conn.execute(
        "UPDATE imports SET chunks_done = chunks_done + 1, last_write_at = now(),"
        " write_xacts = array_append(write_xacts, pg_current_xact_id()), processed_rows = processed_rows + %s,"
        " imported = imported + %s, updated = updated + %s, skipped = skipped + %s, errors = errors + %s,"
        " warnings = warnings + %s WHERE id = %s",
        (
            chunk.record_count,
            counts.imported,
            counts.updated,
            counts.skipped,
            counts.errors,
            counts.warnings,
            import_id,
        ),
    )
    return counts


def finish_import(conn: Connection, import_id: int) -> None:
    conn.execute(
        "UPDATE imports SET status = 'completed', completed_at = now(), processed_rows = total_rows WHERE id = %s",
        (import_id,),
    )


def fail_import(conn: Connection, import_id: int, message: str) -> None:
    failure = storable_text(message)
    conn.execute("UPDATE imports SET status = 'failed', failure = %s WHERE id = %s", (failure, import_id))


def import_errors(conn: Connection, import_id: int, limit: int | None = None) -> list[dict[str, Any]]:
    query = (
        "SELECT row_number, column_name, value, reason, severity FROM import_errors WHERE import_id = %s"
        " ORDER BY row_number, severity"
    )
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    return list(conn.execute(query, (import_id,)))


def list_imports(
    conn: Connection, list_ids: list[int], limit: int = 50, before: int | None = None
) -> list[dict[str, Any]]:
    """The newest imports into these lists (older than import ``before``), with their status as it is now
    (``_now``)."""
    rows = conn.execute(
        sql.SQL(
            "SELECT i.*, l.name AS list_name, {} FROM imports i JOIN lists l ON l.id = i.list_id"
            " WHERE i.list_id = ANY(%(lists)s) AND (%(before)s::bigint IS NULL OR i.id < %(before)s)"
            " ORDER BY i.id DESC LIMIT %(limit)s"
        ).format(_ALIVE),
        {"lists": list_ids, "limit": limit, "before": before},
    )
    return [_now(row) for row in rows]


def import_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the import history, in the shape (and id style) of :func:`import_status`."""
    return {
        "importId": str(row["id"]),
        "batchId": row["batch_id"],
        "listId": str(row["list_id"]),
        "list": row["list_name"],
        "file": row["file_path"],
        "status": row["status"],
        "totalRows": row["total_rows"],
        "results": {k: row[k] for k in ("imported", "updated", "skipped", "errors")},
        "createdAt": row["created_at"].isoformat(),
        "completedAt": row["completed_at"].isoformat() if row["completed_at"] else None,
    }


def import_status(conn: Connection, import_id: int, error_limit: int = 20) -> dict[str, Any]:
    """The PRD's "Get Import Status" shape (plus the list, file, batch and warning count)."""
    row = find_import(conn, import_id)
    total = row["total_rows"] or 0
    processed = min(row["processed_rows"], total) if total else row["processed_rows"]
    status = row["status"]
    return {
        "importId": str(row["id"]),
        "status": status,
        "progress": {
            "processed": processed,
            "total": total,
            "percentage": round(100.0 * processed / total, 1) if total else 0.0,
        },
        "results": {
            "imported": row["imported"],
            "updated": row["updated"],
            "skipped": row["skipped"],
            "errors": row["errors"],
        },
        "warnings": row["warnings"],
        "errors": [
            {
                "row": e["row_number"],
                "column": e["column_name"],
                "value": e["value"],
                "reason": e["reason"],
                "severity": e["severity"],
            }
            for e in import_errors(conn, import_id, limit=error_limit)
        ],
        "completedAt": row["completed_at"].isoformat() if row["completed_at"] else None,
        "batchId": row["batch_id"],
        "listId": str(row["list_id"]),
        "file": row["file_path"],
        "mapping": row["mapping"],
        "failure": row["failure"],
        "dagsterRunId": row["dagster_run_id"],
        "onDuplicate": row["options"].get("on_duplicate", "skip"),  # what its skipped rows are
    }


_SHOWN = 5
"""How many lead or import ids an undo's refusal names."""


def _ids(ids: list[int], noun: str) -> str:
    shown = ", ".join(str(i) for i in ids[:_SHOWN])
    return f"{noun} {shown}" + (f" and {len(ids) - _SHOWN:,} more" if len(ids) > _SHOWN else "")


def _undo_blockers(conn: Connection, import_id: int) -> tuple[list[int], list[int], list[int]]:
    """What stands in the way of undoing an import, among the leads it wrote (``undo_written``): the merges (not
    undone) of those leads, the later imports (not undone) that updated them, and the others that changed after
    its last write (bulk edits, enrichment, CRM pulls): the transaction that last wrote them is none of its chunks'
    (sql/024; leads written before that are compared by time). Restoring or removing them would lose what happened
    since."""
    merges = conn.execute(
        "SELECT DISTINCT m.id FROM merges m"
        " CROSS JOIN LATERAL unnest(m.survivor_id || m.merged_ids) AS t(id) JOIN undo_written w ON w.id = t.id"
        " WHERE m.undone_at IS NULL ORDER BY m.id"
    )
    later = conn.execute(
        "SELECT DISTINCT u.import_id FROM import_updates u JOIN undo_written w ON w.id = u.lead_id"
        " JOIN imports i ON i.id = u.import_id AND i.status <> 'undone' WHERE u.import_id > %(imp)s"
        " ORDER BY u.import_id DESC",
        {"imp": import_id},
    )
    later_ids = [int(r["import_id"]) for r in later]
    changed = conn.execute(
        "SELECT l.id FROM leads l JOIN undo_written w ON w.id = l.id JOIN imports i ON i.id = %(imp)s"
        " WHERE CASE WHEN l.write_xact IS NULL THEN l.updated_at > coalesce(i.last_write_at, i.completed_at)"
        " ELSE l.write_xact <> ALL(coalesce(i.write_xacts, '{}')) END"
        " AND NOT EXISTS (SELECT 1 FROM import_updates u WHERE u.lead_id = l.id AND u.import_id = ANY(%(later)s))"
        " ORDER BY l.id",
        {"imp": import_id, "later": later_ids},
    )
    return [int(r["id"]) for r in merges], later_ids, [int(r["id"]) for r in changed]


def undo_import(conn: Connection, import_id: int, user: str, *, force: bool = False) -> dict[str, int]:
    """Remove the leads an import created and restore the previous values of those it updated, exactly.

    ``user`` needs the editor role on the import's list and on every list its leads are in now (moves take them
    elsewhere). Refused while a merge involves leads it wrote (removing a merge's survivor would take the merge,
    and the leads merged into it, with it: undo the merge first), and, unless ``force``, while leads it wrote
    were changed since by a later import (undo those first, newest first: each restores what it found) or
    otherwise (``force`` undoes anyway and loses those changes). An interrupted import (``_now``) is undone as a
    failed one is: what its committed chunks wrote; one still running is refused (the row lock taken here makes
    a resume starting meanwhile wait, and then refuse the import undone: ``start_import``)."""
    row = conn.execute(
        sql.SQL("SELECT i.*, {} FROM imports i WHERE i.id = %s FOR UPDATE OF i").format(_ALIVE), (import_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(access.not_shared(f"import {import_id}", IMPORTS_HINT))
    access.require(  # before anything about the import is said
        conn, row["list_id"], user, "editor", "undoing an import into it", subject=f"import {import_id}",
        hint=IMPORTS_HINT,
    )  # fmt: skip
    row = _now(row)
    if row["status"] == "undone":
        raise PermanentError(f"import {import_id} was already undone at {row['undone_at']:%Y-%m-%d %H:%M}")
    if row["status"] == "processing":
        raise PermanentError(f"import {import_id} is still processing; wait for it to finish or fail, then undo")
    if row["snapshots_removed_at"] is not None:
        raise PermanentError(
            f"import {import_id} can no longer be undone: the previous values of the leads it updated were removed"
            f" on {row['snapshots_removed_at']:%Y-%m-%d} by the retention policy (`leads retention show`)"
        )
    conn.execute(  # the leads it wrote, found once for the checks below
        "CREATE TEMP TABLE undo_written ON COMMIT DROP AS SELECT id FROM leads WHERE created_by_import = %(imp)s"
        " UNION SELECT lead_id FROM import_updates WHERE import_id = %(imp)s",
        {"imp": import_id},
    )
    # Held from here: an edit in flight (a `bulk set`, an enrichment) is waited for and then seen by the checks
    # below, where the undo would otherwise restore or delete over it once it committed, losing it unseen.
    conn.execute("SELECT l.id FROM leads l JOIN undo_written USING (id) ORDER BY l.id FOR UPDATE OF l")
    lists = [r["list_id"] for r in conn.execute("SELECT DISTINCT l.list_id FROM leads l JOIN undo_written USING (id)")]
    moved = f"a list holding leads import {import_id} wrote"  # moved since: not named to a stranger to it
    access.require_all(conn, lists, user, "editor", "undoing an import into it", subject=moved)
    merges, later, changed = _undo_blockers(conn, import_id)
    if merges:
        raise PermanentError(
            f"cannot undo import {import_id}: leads it wrote are in {_ids(merges, 'merge')}, and removing or restoring"
            f" a merged lead under its merge would lose leads. Undo the merge first (`leads merges undo {merges[-1]}`)"
        )
    if later and not force:
        raise PermanentError(
            f"cannot undo import {import_id}: {_ids(later, 'import')} updated leads it wrote since; undo"
            f" {'it' if len(later) == 1 else 'them, newest first,'} first (`leads imports undo {later[0]}`), or pass"
            " --force to restore this import's previous values over theirs"
        )
    if changed and not force:
        raise PermanentError(
            f"cannot undo import {import_id}: {counted(len(changed), 'lead')} it wrote changed since"
            f" ({_ids(changed, 'lead')}:"
            " bulk edits, enrichment or CRM pulls); pass --force to undo anyway and lose those changes"
        )
    restore_columns = sql.SQL(", ").join(
        sql.Identifier(name) for name in (*STORED_COLUMNS, "custom", "updated_at", "write_xact")
    )
    conn.execute("SELECT set_config('leads.restoring', 'on', true)")  # the saved rows as they are (sql/023)
    restored = conn.execute(
        sql.SQL(
            "UPDATE leads l SET ({cols}) = (SELECT {cols} FROM jsonb_populate_record(NULL::leads, u.previous))"
            " FROM import_updates u WHERE u.import_id = {imp} AND u.lead_id = l.id"
        ).format(cols=restore_columns, imp=sql.Literal(import_id))
    ).rowcount
    removed = conn.execute("DELETE FROM leads WHERE created_by_import = %s", (import_id,)).rowcount
    # restored, the snapshots are read by nothing (an undone import is neither undone again nor in another's way)
    conn.execute("DELETE FROM import_updates WHERE import_id = %s", (import_id,))
    conn.execute("UPDATE imports SET status = 'undone', undone_at = now() WHERE id = %s", (import_id,))
    conn.execute("DROP TABLE undo_written")
    # chunks its workers staged and no run merged (a killed import never resumed): sealed values of its file that
    # would otherwise wait for the next import to start
    staging.clear(conn, import_id)
    return {"removed": removed, "restored": restored}
