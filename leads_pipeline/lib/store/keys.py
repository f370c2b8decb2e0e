"""Key rotation: re-sealing every stored PII value under the active encryption key, in batches, resumably.

``rotate`` walks each table holding sealed values (``SEALED_COLUMNS``) a few hundred pages at a time; each batch
re-seals, in one transaction, the rows holding a value sealed under another key, and records how far it got in
``key_rotations.progress``. A rotation that stops (a crash, Ctrl-C) is resumed by running it again: it continues
at the recorded page, and whatever it re-reads is already under the active key and is skipped. Rows updated by
other writers while it runs are sealed under the active key by those writers already.

JSON payloads (custom fields, fact details, CRM values, row snapshots) are re-sealed deterministically (see
``Keyring.seal``): an import compares custom fields whole.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

from psycopg import sql
from psycopg.types.json import Jsonb, JsonbLoader, JsonLoader
from psycopg.types.string import TextLoader

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.privacy.crypto import (
    KEY_FILE,
    KEYS_VAR,
    PAYLOAD_KEYS,
    PREFIX,
    SEALED_FIELDS,
    Keyring,
    Sealer,
    blind_index,
    blind_key,
    is_sealed,
    keyring,
    keyring_file,
    lead_columns,
    seal,
    seal_details,
    seal_fact,
    seal_payload,
    sealed_key_id,
)
from leads_pipeline.lib.privacy.crypto import sealer as crypto_sealer
from leads_pipeline.lib.privacy.keys import ENV_VAR as SUPPRESSION_VAR
from leads_pipeline.lib.privacy.keys import KEY_FILE as SUPPRESSION_FILE
from leads_pipeline.lib.runtime import leads_home
from leads_pipeline.lib.store import audit
from leads_pipeline.lib.store.lists import Connection

ColumnKind = Literal["sealed", "json"]
"""sealed: a text column whose sealed values are re-sealed (values in clear from before a column was sealed are
sealed by the upgrade: sql/080, sql/086, sql/093; a lead's blind indexes do not change with the key); json: a JSON
column whose sealed strings are re-sealed."""


@dataclass(frozen=True)
class SealedTable:
    table: str
    columns: tuple[tuple[str, ColumnKind], ...]


SEALED_COLUMNS: Final[tuple[SealedTable, ...]] = (
    SealedTable("leads", (*((f, "sealed") for f in SEALED_FIELDS), ("custom", "json"))),
    SealedTable("lead_facts", (("value", "sealed"), ("details", "json"))),
    SealedTable("import_errors", (("value", "sealed"),)),
    SealedTable("import_updates", (("previous", "json"),)),
    SealedTable("merges", (("survivor_before", "json"),)),
    SealedTable("email_verifications", (("details", "json"),)),
    SealedTable("crm_links", (("last_values", "json"),)),
    SealedTable("crm_conflicts", (("local_value", "sealed"), ("remote_value", "sealed"))),
    SealedTable("crm_sync_log", (("message", "sealed"),)),
    SealedTable("crm_rejects", (("message", "sealed"),)),
    SealedTable("enrichment_jobs", (("notify_url", "sealed"),)),
    SealedTable("list_enrichment_settings", (("notify_url", "sealed"),)),
)
"""Every column holding sealed values (a stage adding one adds it here)."""

PAGES_PER_BATCH: Final = 256

Progress = Callable[[str, int, int], None]
"""Called after each committed batch with (table, pages done, pages in the table)."""


def _stale(column: str, kind: ColumnKind, active: str) -> sql.Composable:
    """SQL: this column holds a value sealed under another key than the active one."""
    name = sql.Identifier(column)
    if kind == "sealed":
        return sql.SQL("{} ~ {}").format(name, sql.Literal(f"^{PREFIX}(?!{active}:)"))
    return sql.SQL("{}::text ~ {}").format(name, sql.Literal(f'"{PREFIX}(?!{active}:)'))


def _reseal_json(value: Any, ring: Keyring) -> Any:
    if isinstance(value, str):
        if is_sealed(value) and sealed_key_id(value) != ring.active:
            return ring.seal(ring.open(value), deterministic=True)
        return value
    if isinstance(value, dict):
        return {k: _reseal_json(v, ring) for k, v in value.items()}
    if isinstance(value, list):
        return [_reseal_json(v, ring) for v in value]
    return value


def _reseal_row(row: dict[str, Any], spec: SealedTable, ring: Keyring) -> dict[str, Any]:
    """The new values of one row's columns."""
    changes: dict[str, Any] = {}
    for column, kind in spec.columns:
        value = row[column]
        if value is None:
            continue
        if kind == "json":
            changes[column] = Jsonb(_reseal_json(value, ring))
        elif is_sealed(value) and sealed_key_id(value) != ring.active:
            changes[column] = ring.seal(ring.open(value))
    return changes


def _pages(conn: Connection, table: str) -> int:
    row = conn.execute(
        "SELECT (pg_relation_size(%s::regclass) / current_setting('block_size')::int)::int AS pages", (table,)
    ).fetchone()
    return int(row["pages"]) if row else 0


def _raw_cursor(conn: Connection) -> Any:
    """A cursor that loads values as stored (sealed), not opened as the connection's loaders do."""
    cursor = conn.cursor()
    for name in ("text", "varchar"):
        cursor.adapters.register_loader(name, TextLoader)
    cursor.adapters.register_loader("json", JsonLoader)
    cursor.adapters.register_loader("jsonb", JsonbLoader)
    return cursor


def _batch(conn: Connection, spec: SealedTable, ring: Keyring, first: int, last: int) -> int:
    """Re-seal the stale rows among pages [first, last) of the table; returns how many rows changed."""
    columns = [c for c, _ in spec.columns]
    stale = sql.SQL(" OR ").join(_stale(c, kind, ring.active) for c, kind in spec.columns)
    query = sql.SQL(
        "SELECT ctid::text AS tid, {cols} FROM {table} WHERE ctid >= {first}::tid AND ctid < {last}::tid"
        " AND ({stale}) FOR UPDATE"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        table=sql.Identifier(spec.table),
        first=sql.Literal(f"({first},0)"),
        last=sql.Literal(f"({last},0)"),
        stale=stale,
    )
    with _raw_cursor(conn) as cursor:
        changed = [(_reseal_row(row, spec, ring), row["tid"]) for row in cursor.execute(query).fetchall()]
        return _update(cursor, spec.table, [(changes, tid) for changes, tid in changed if changes])


def _update(cursor: Any, table: str, rows: list[tuple[dict[str, Any], str]]) -> int:
    """Write each row's changed columns (by its ``ctid``); returns how many rows changed."""
    updates: dict[tuple[str, ...], list[list[Any]]] = {}  # rows by the set of columns they change
    for changes, tid in rows:
        updates.setdefault(tuple(changes), []).append([*changes.values(), tid])
    for names, params in updates.items():
        assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in names)
        cursor.executemany(
            sql.SQL("UPDATE {} SET {} WHERE ctid = %s::tid").format(sql.Identifier(table), assignments), params
        )
    return len(rows)


@dataclass(frozen=True)
class _InClear:
    """A column whose values written in clear, before they were sealed, may remain: which rows may hold one
    (SQL on the values as stored) and the row's changed columns as today's writer stores them."""

    table: str
    reads: tuple[str, ...]
    where: str
    sealed: Callable[[dict[str, Any]], dict[str, Any]]


def _text(table: str, column: str) -> _InClear:
    return _InClear(
        table,
        (column,),
        f"{column} <> '' AND NOT starts_with({column}, '{PREFIX}')",
        lambda row: {column: seal(row[column])},
    )


def _json(table: str, column: str, sealed: Callable[[Any], Any]) -> _InClear:
    def changes(row: dict[str, Any]) -> dict[str, Any]:
        value = sealed(row[column]) if isinstance(row[column], dict) else row[column]
        return {column: Jsonb(value)} if value != row[column] else {}

    # Rows holding no address, no +number and no payload key have nothing to seal: not loaded (a fact's details
    # are mostly a title or an industry; 200k of them cost ~6 s to load and compare).
    keys = "|".join(sorted(PAYLOAD_KEYS | set(SEALED_FIELDS)))
    return _InClear(table, (column,), f'{column}::text ~* \'@|"\\+[0-9]|"({keys})": \'', changes)


def _lead_sealed(lead: dict[str, Any]) -> dict[str, Any]:
    """A lead's columns (its row, or its row kept as JSON) with each sealed field in clear stored as the leads
    table stores it now: sealed, with its blind index and an email's domain (as ``to_jsonb(leads)`` gives it).
    A blank value (versions before sql/010 stored '' for a missing email or phone) is stored as no value: sealed,
    it had no blind index, which sql/010's checks refuse, and the whole upgrade failed."""
    for field in SEALED_FIELDS:
        value = lead.get(field)
        if isinstance(value, str) and not is_sealed(value):
            lead = {**lead, **lead_columns(field, value if value.strip() else None)}
    return lead


def _fields_in_clear(value: Callable[[str], str]) -> str:
    """SQL: one of a lead's sealed fields (``value`` gives the SQL of each) holds a value in clear."""
    return " OR ".join(f"NOT starts_with({value(field)}, '{PREFIX}')" for field in SEALED_FIELDS)


def _snapshot(table: str, column: str) -> _InClear:
    rule = _json(table, column, _lead_sealed)
    return _InClear(table, rule.reads, _fields_in_clear(lambda field: f"{column} ->> '{field}'"), rule.sealed)


def _leads() -> _InClear:
    def changes(row: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in _lead_sealed(row).items() if name not in row or row[name] != value}

    return _InClear("leads", SEALED_FIELDS, _fields_in_clear(lambda field: field), changes)


def _clear_values(sealer: Sealer) -> tuple[_InClear, ...]:
    """Every column of ``SEALED_COLUMNS`` but the leads' (sql/086) and the webhook URLs (sql/080)."""
    return (
        _InClear(
            "lead_facts",
            ("field", "value"),
            f"NOT starts_with(value, '{PREFIX}')"
            f" AND (field IN ({', '.join(map(repr, SEALED_FIELDS))}) OR value LIKE '%@%' OR value LIKE '+%')",
            lambda row: {"value": v} if (v := seal_fact(row["field"], row["value"])) != row["value"] else {},
        ),
        _json("lead_facts", "details", seal_details),
        _InClear(
            "import_errors",
            ("value",),
            f"NOT starts_with(value, '{PREFIX}')",
            lambda row: {"value": sealer.seal(row["value"]), "subjects": list(sealer.subjects(row["value"]))},
        ),
        _snapshot("import_updates", "previous"),
        _snapshot("merges", "survivor_before"),
        _json("email_verifications", "details", seal_details),
        _json("crm_links", "last_values", seal_payload),
        _text("crm_conflicts", "local_value"),
        _text("crm_conflicts", "remote_value"),
        _text("crm_sync_log", "message"),
        _text("crm_rejects", "message"),
    )


_Batches = Iterator[tuple[Any, list[dict[str, Any]]]]


def _walk(conn: Connection, table: str, reads: sql.Composable, where: str) -> _Batches:
    """The rows of ``table`` matching ``where`` (SQL on the values as stored), ``PAGES_PER_BATCH`` pages at a
    time, each batch's with a cursor to write them back: a big database from before values were sealed is never
    held whole (rows written back move to new pages past the walk's end, and no longer match if met again)."""
    for first in range(0, _pages(conn, table), PAGES_PER_BATCH):
        query = sql.SQL(
            "SELECT ctid::text AS tid, {reads} FROM {table} WHERE ctid >= {first}::tid AND ctid < {last}::tid"
            " AND ({where})"
        ).format(
            reads=reads,
            table=sql.Identifier(table),
            first=sql.Literal(f"({first},0)"),
            last=sql.Literal(f"({first + PAGES_PER_BATCH},0)"),
            where=sql.SQL(where),  # type: ignore[arg-type]
        )
        with _raw_cursor(conn) as cursor:
            yield cursor, cursor.execute(query).fetchall()


def _seal_in_clear(conn: Connection, rules: tuple[_InClear, ...]) -> int:
    """Seal the values the rules find in clear, in the caller's transaction, a few pages at a time (``_walk``);
    returns how many rows changed."""
    changed = 0
    for rule in rules:
        for cursor, rows in _walk(conn, rule.table, sql.SQL(", ").join(map(sql.Identifier, rule.reads)), rule.where):
            sealed = [(rule.sealed(row), row["tid"]) for row in rows]
            changed += _update(cursor, rule.table, [(changes, tid) for changes, tid in sealed if changes])
    return changed


def seal_clear_secrets(conn: Connection) -> int:
    """sql/080, in its transaction: seal the webhook URLs (a list's setting, each job's copy) stored in clear by
    versions before they were sealed, so that no token waits in clear for the next rotation (which re-seals
    sealed values only); returns how many values it sealed."""
    return _seal_in_clear(
        conn, (_text("enrichment_jobs", "notify_url"), _text("list_enrichment_settings", "notify_url"))
    )


def seal_leads_in_clear(conn: Connection) -> int:
    """sql/086, in its transaction: seal and blind-index the leads' emails, phones and streets stored in clear
    before sql/010 (returns how many leads changed). Until ``leads keys rotate`` did it, an import of the same
    file into an upgraded database found none of them by email or phone (their blind indexes were empty) and
    made each person a second lead. Values already sealed are left to ``rotate`` (this process may lack an old
    key)."""
    return _seal_in_clear(conn, (_leads(),))


def seal_values_in_clear(conn: Connection) -> int:
    """sql/093, in its transaction: seal the values other tables than ``leads`` kept in clear from before they
    were sealed (lead facts, import errors with their subjects, lead snapshots, payloads, CRM values and
    messages), as their writers store them today; returns how many rows changed. ``leads keys rotate`` re-seals
    values sealed under an old key but never sealed these, so a person's address stayed readable in a dump of an
    upgraded database."""
    return _seal_in_clear(conn, _clear_values(crypto_sealer()))


@dataclass(frozen=True)
class _LegacyKey:
    """A lookup cache keyed by an identifier in clear before sql/010: its key column, which rows still hold one
    (SQL), the SQL of that identifier, its kind of blind index, and the other columns of the table's unique key."""

    table: str
    column: str
    legacy: str
    identifier: str
    kind: str
    unique: tuple[str, ...]


_LEGACY_KEYS: Final = (
    _LegacyKey("email_verifications", "email_bidx", "email_bidx LIKE '%@%'", "email_bidx", "email", ("method",)),
    _LegacyKey(
        "email_pattern_evidence",
        "address_bidx",
        "address_bidx !~ '^[0-9a-f]{64}$'",
        "address_bidx || '@' || domain",
        "email",
        ("domain",),
    ),
    _LegacyKey("dnc_numbers", "number_bidx", "number_bidx LIKE '+%'", "number_bidx", "phone", ()),
)


def index_legacy_keys(conn: Connection) -> int:
    """sql/112, in its transaction: re-key the lookup caches keyed by an identifier in clear before sql/010 (the
    verification cache, pattern evidence, the Do-Not-Call copy) by its blind index, a few pages at a time
    (``_walk``); a row whose blind index is there already is a duplicate and is dropped. Returns how many rows
    changed. Until ``leads keys rotate`` did it, an upgraded database's lookups (by blind index) found none of
    them: a number on the Do-Not-Call copy was not screened, verdicts were bought again, and a privacy request
    left the addresses in clear."""
    changed = 0
    for key in _LEGACY_KEYS:
        table, unique = sql.Identifier(key.table), (key.column, *key.unique)
        others = sql.SQL("").join(sql.SQL(", {}").format(sql.Identifier(name)) for name in key.unique)
        reads = sql.SQL("{} AS identifier{}").format(sql.SQL(key.identifier), others)  # type: ignore[arg-type]
        # The rows holding one of the batch's new keys already (by the table's unique key, so by its index).
        names = sql.SQL(", ").join(map(sql.Identifier, unique))
        holding = sql.SQL("SELECT {} FROM {} JOIN unnest({}) AS batch ({}) USING ({})").format(
            names, table, sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in unique), names, names
        )
        for cursor, rows in _walk(conn, key.table, reads, key.legacy):
            if not rows:
                continue
            indexed = [((blind_index(key.kind, row["identifier"]), *(row[n] for n in key.unique)), row) for row in rows]
            columns = [[new_key[i] for new_key, _ in indexed] for i in range(len(unique))]
            taken = {tuple(found.values()) for found in cursor.execute(holding, columns)}
            updates, duplicates = [], []
            for new_key, row in indexed:
                if new_key in taken:
                    duplicates.append(row["tid"])
                else:
                    taken.add(new_key)
                    updates.append(({key.column: new_key[0]}, row["tid"]))
            if duplicates:
                cursor.execute(sql.SQL("DELETE FROM {} WHERE ctid = ANY(%s::tid[])").format(table), (duplicates,))
            changed += _update(cursor, key.table, updates) + len(duplicates)
    return changed


def _start(conn: Connection, active: str, actor: str) -> dict[str, Any]:
    """The running rotation to the active key (to resume), or a new one."""
    row = conn.execute(
        "SELECT * FROM key_rotations WHERE status = 'running' AND target_key = %s ORDER BY id DESC LIMIT 1",
        (active,),
    ).fetchone()
    if row is not None:
        return row
    row = conn.execute(
        "INSERT INTO key_rotations (target_key, started_by) VALUES (%s, %s) RETURNING *", (active, actor)
    ).fetchone()
    assert row is not None
    audit.record(conn, actor, "keys.rotate-start", f"key-rotation:{row['id']}", {"targetKey": active})
    return row


def rotate(
    conn: Connection,
    actor: str,
    *,
    pages_per_batch: int = PAGES_PER_BATCH,
    on_batch: Progress | None = None,
) -> dict[str, Any]:
    """Re-seal everything under the active key, resuming an unfinished rotation to it; audited. Returns the
    rotation's summary. Each batch is its own transaction (the connection must not be inside one)."""
    ring = keyring()
    with conn.transaction():
        rotation = _start(conn, ring.active, actor)
    rotation_id = int(rotation["id"])
    progress: dict[str, int] = dict(rotation["progress"])
    resealed = int(rotation["resealed"])
    tables = {r["table_name"] for r in conn.execute("SELECT table_name FROM information_schema.tables")}
    for spec in SEALED_COLUMNS:
        if spec.table not in tables:
            continue
        page = progress.get(spec.table, 0)
        # Re-sealed rows move to new pages at the table's end and the walk goes on over them (a value written
        # meanwhile under an older key is caught there too); progress is reported against the pages there were.
        shown_total = _pages(conn, spec.table)
        while page < _pages(conn, spec.table):
            end = page + pages_per_batch
            with conn.transaction():
                changed = _batch(conn, spec, ring, page, end)
                resealed += changed
                conn.execute(
                    "UPDATE key_rotations SET progress = progress || jsonb_build_object(%s::text, %s::int),"
                    " resealed = resealed + %s WHERE id = %s",
                    (spec.table, end, changed, rotation_id),
                )
            page = end
            if on_batch is not None:
                on_batch(spec.table, min(page, shown_total), shown_total)
    with conn.transaction():
        conn.execute("UPDATE key_rotations SET status = 'completed', finished_at = now() WHERE id = %s", (rotation_id,))
        audit.record(
            conn,
            actor,
            "keys.rotate",
            f"key-rotation:{rotation_id}",
            {"targetKey": ring.active, "resealed": resealed, "resumed": bool(rotation["progress"])},
        )
    return {"rotationId": rotation_id, "activeKey": ring.active, "resealed": resealed, "status": "completed"}


def key_usage(conn: Connection) -> dict[str, int]:
    """How many leads values are sealed under each key id (none is in clear: sql/086, CHECK constraints)."""
    counts: dict[str, int] = {}
    for field in SEALED_FIELDS:
        query = sql.SQL(
            "SELECT split_part({c}, ':', 2) AS key, count(*) AS n FROM leads WHERE {c} IS NOT NULL GROUP BY 1"
        ).format(c=sql.Identifier(field))
        with _raw_cursor(conn) as cursor:
            for row in cursor.execute(query):
                counts[row["key"]] = counts.get(row["key"], 0) + int(row["n"])
    return counts


_CHECK_TEXT: Final = b"leads-key-check-v1"


def check_value(key: bytes) -> str:
    """A key's check value (``key_checks``): it tells keys apart and reveals nothing of them."""
    return hmac.new(key, _CHECK_TEXT, hashlib.sha256).hexdigest()


def require_database_keys(conn: Connection, *, record: bool = True) -> None:
    """Refuse keys other than those this database's values are sealed and blind-indexed under.

    Each key is known to the database by a check value (``key_checks``, sql/085), recorded by the first process
    that uses the key with it. A process whose leads home is new (another machine or container, the daemon's
    host, a CI runner) generated keys of its own: its values opened nowhere else, every value stored before failed
    to open in it, and its imports matched no existing lead by email or phone (duplicates). A key with no check
    value yet is first tried on a value stored under it (``_opens_stored_values``) before its value is recorded,
    so the first process after an upgrade from before sql/085 cannot record the wrong keys either. Without
    ``record`` (a database with no ``key_checks`` yet: ``require_keys_to_seal``) the keys are only tried."""
    ring = keyring()
    blind = blind_key()
    wanted = key_names(ring, blind)
    recorded = (
        {
            row["name"]: row["check_value"]
            for row in conn.execute("SELECT name, check_value FROM key_checks WHERE name = ANY(%s)", (list(wanted),))
        }
        if record
        else {}
    )
    for name, key in wanted.items():
        value = check_value(key)
        if name not in recorded:
            if not _opens_stored_values(conn, name, ring, blind):
                raise ConfigurationError(_other_keys(name))
            recorded[name] = _record(conn, name, value) if record else value
        if recorded[name] != value:
            raise ConfigurationError(_other_keys(name))


def _record(conn: Connection, name: str, value: str) -> str:
    """Record ``value`` as the check value of key ``name``; returns the one recorded (another process's first)."""
    conn.execute(
        "INSERT INTO key_checks (name, check_value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (name, value)
    )
    row = conn.execute("SELECT check_value FROM key_checks WHERE name = %s", (name,)).fetchone()
    return str(row["check_value"]) if row else value


def require_keys_to_seal(conn: Connection) -> None:
    """Refuse keys other than the database's before a migration seals values an older version stored in clear
    (sql/080, sql/086, sql/093) or blind-indexes the caches it keyed in clear (sql/112): it does so under this
    process's keys, and a process whose leads home had keys of its own (another machine with DATABASE_URL, a
    container with a new home) sealed them under keys that open nowhere else before ``require_database_keys``
    refused it. A database from before sql/085 has no check
    values: the keys are tried on its stored values (none before sql/010: nothing is sealed yet)."""
    row = conn.execute(
        "SELECT to_regclass('key_checks') IS NOT NULL AS checks, EXISTS (SELECT FROM pg_attribute"
        " WHERE attrelid = to_regclass('leads') AND attname = 'email_bidx' AND NOT attisdropped) AS sealed"
    ).fetchone()
    if row is not None and row["sealed"]:
        require_database_keys(conn, record=bool(row["checks"]))


def key_names(ring: Keyring, blind: bytes) -> dict[str, bytes]:
    """Each key of this process by its name in ``key_checks``, the encryption keys first."""
    return {f"encryption:{key_id}": key for key_id, key in ring.keys.items()} | {"suppression": blind}


def _opens_stored_values(conn: Connection, name: str, ring: Keyring, blind: bytes) -> bool:
    """Whether the key named ``name`` agrees with a value stored under it (True when none is stored to try it on):
    an encryption key opens a value sealed under its id in any sealed column (a database may hold no email but
    phones, facts, import errors or webhook URLs), the suppression key gives a lead's email or phone sealed under
    one of this process's keys the blind index stored with it, or else a rejected cell its subjects
    (``_subjects_agree``)."""
    kind, _, key_id = name.partition(":")
    present = {
        (row["table_name"], row["column_name"])
        for row in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        )
    }
    with _raw_cursor(conn) as cursor:
        if kind == "encryption":
            row = cursor.execute(_sealed_under(present), {"prefix": f"{PREFIX}{key_id}:"}).fetchone()
        else:
            row = cursor.execute(_blind_indexed(present), {"keys": list(ring.keys)}).fetchone()
            if row is None and ("import_errors", "subjects") in present:
                return _subjects_agree(cursor, ring, blind)
    if row is None:
        return True
    try:
        plain = ring.open(row["v"])
    except ConfigurationError:
        # The encryption keys are checked first: a value that does not open cannot test the suppression key.
        return kind != "encryption"
    return kind == "encryption" or blind_index(row["field"], plain, blind) == row["bidx"]


_CELLS_TRIED: Final = 20
"""Rejected cells read at most to find one that tests the suppression key (one not cut short does)."""


def _subjects_agree(cursor: Any, ring: Keyring, blind: bytes) -> bool:
    """Whether the suppression key gives a rejected cell sealed under one of this process's keys the subjects
    stored with it (True when no cell tests it): the blind indexes of the identifiers in the cell, which every
    writer since sql/010 took by ``Sealer.subjects`` (the import, sql/093), unchanged since. A cell cut to
    ``PROBLEM_VALUE_CHARS`` had them taken from the whole cell (an address cut in two is in none): not a test.
    A wrong key shares none of them; any shared one will do, so no difference in the identifiers found refuses
    the right key."""
    from leads_pipeline.lib.prepare import PROBLEM_VALUE_CHARS  # (pandas: on this rare path only)

    cells = cursor.execute(
        "SELECT value, subjects FROM import_errors WHERE cardinality(subjects) > 0 AND starts_with(value, %s)"
        " AND split_part(value, ':', 2) = ANY(%s) LIMIT %s",
        (PREFIX, list(ring.keys), _CELLS_TRIED),
    )
    sealer = Sealer(ring, blind)
    for cell in cells.fetchall():
        try:
            plain = ring.open(cell["value"])
        except ConfigurationError:  # as for a lead's value: one that does not open cannot test it
            continue
        if len(plain) != PROBLEM_VALUE_CHARS:
            return not set(sealer.subjects(plain)).isdisjoint(cell["subjects"])
    return True


def _first(queries: list[sql.Composable]) -> sql.Composable:
    """SQL: the first row of the first of ``queries`` that has one (each stops at its first row)."""
    return sql.SQL("SELECT * FROM ({}) AS found LIMIT 1").format(
        sql.SQL(" UNION ALL ").join(sql.SQL("({} LIMIT 1)").format(query) for query in queries)
    )


def _sealed_under(present: set[tuple[str, str]]) -> sql.Composable:
    """SQL: a value sealed under the key of prefix ``%(prefix)s``, from any sealed column of ``present``."""
    path = sql.SQL("'$.** ? (@ starts with $p)', jsonb_build_object('p', %(prefix)s::text)")
    queries: list[sql.Composable] = []
    for spec in SEALED_COLUMNS:
        for column, kind in spec.columns:
            if (spec.table, column) not in present:
                continue
            query = (
                "SELECT jsonb_path_query_first({c}, {path}) #>> '{{}}' AS v FROM {t}"
                " WHERE jsonb_path_exists({c}, {path})"
                if kind == "json"
                else "SELECT {c} AS v FROM {t} WHERE starts_with({c}, %(prefix)s)"
            )
            queries.append(
                sql.SQL(query).format(  # type: ignore[arg-type]
                    c=sql.Identifier(column), t=sql.Identifier(spec.table), path=path
                )
            )
    return _first(queries)


def _blind_indexed(present: set[tuple[str, str]]) -> sql.Composable:
    """SQL: a lead's email or phone sealed under one of the keys ``%(keys)s``, with its blind index."""
    return _first(
        [
            sql.SQL(
                "SELECT {c} AS v, {b} AS bidx, {f} AS field FROM leads WHERE {b} IS NOT NULL"
                " AND starts_with({c}, {p}) AND split_part({c}, ':', 2) = ANY(%(keys)s)"
            ).format(
                c=sql.Identifier(field), b=sql.Identifier(f"{field}_bidx"), f=sql.Literal(field), p=sql.Literal(PREFIX)
            )
            for field in SEALED_FIELDS
            if ("leads", f"{field}_bidx") in present
        ]
    )


def _other_keys(name: str) -> str:
    home = leads_home()
    if name == "suppression":
        source = SUPPRESSION_VAR if os.environ.get(SUPPRESSION_VAR) else str(home / SUPPRESSION_FILE)
        what = (
            f"the suppression key of {source} is not the one this database's blind indexes and suppressions were"
            " made with (imports would match no stored lead by email or phone, and erased people would come back)"
        )
    else:
        key_id = name.partition(":")[2]
        source = KEYS_VAR if os.environ.get(KEYS_VAR) else str(keyring_file())
        what = (
            f"encryption key {key_id!r} of {source} is not the key {key_id!r} this database's values are sealed"
            " under (they would not open, and values sealed with it would open nowhere else)"
        )
    return (
        f"{what}: use the keys of the leads home that first used this database: copy its {KEY_FILE} and"
        f" {SUPPRESSION_FILE} into {home} (replacing those there), or set {KEYS_VAR} and {SUPPRESSION_VAR} as"
        " there"
    )
