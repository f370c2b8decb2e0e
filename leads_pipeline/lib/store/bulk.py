"""Bulk actions on a selection of leads: tag, untag, set a field, move or copy to a list, delete, export.

Each write is one transaction, checked first against the acting user's role on every list it touches (editor or
owner; the lists must not be archived), and returns a ``BulkResult`` saying what it matched and changed. The
import's normalization (pandas, pyarrow) is loaded by the functions that normalize a value or a key: a search, an
export or a CRM sync reads leads without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from psycopg import sql

from leads_pipeline.lib.countries import check_default_region
from leads_pipeline.lib.errors import ConfigurationError, NotFoundError
from leads_pipeline.lib.fields import (
    CANONICAL_FIELDS,
    CONTACT_KEYS,
    INDEX_COLUMNS,
    MATCH_COLUMNS,
    MATCH_KEYS,
    PHONE_EXTENSIONS,
)
from leads_pipeline.lib.filters import CUSTOM_PREFIX, Selection
from leads_pipeline.lib.privacy.crypto import SEALED_FIELDS, lead_columns
from leads_pipeline.lib.scoring.stages import check_manual_stage
from leads_pipeline.lib.store import access, audit, privacy, search_index
from leads_pipeline.lib.store.db import key_column
from leads_pipeline.lib.store.lists import Connection, LeadList, hold_lists_of, lock_for_adding, normalize_tags
from leads_pipeline.lib.store.search import LEAD_COLUMNS, LEAD_TAGS, select_lead_ids, where_clause

SETTABLE: Final[tuple[str, ...]] = (*CANONICAL_FIELDS, "stage")
"""Fields ``set_field`` may write (plus custom fields as ``custom.NAME``)."""
_KEY_INPUTS: Final = frozenset({"first_name", "last_name", "company"})
# Columns copied by ``copy_to``: everything a lead carries except its identity, list and history.
_COPIED: Final[tuple[str, ...]] = (
    *CANONICAL_FIELDS,
    "phone_ext",
    "mobile_phone_ext",
    "custom",
    "company_key",
    "name_key",
    *INDEX_COLUMNS,
    "stage",
    "score",
    "opted_out_at",
)


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did: ``matched`` leads selected, ``changed`` leads written, ``skipped`` with why."""

    action: str
    matched: int
    changed: int
    skipped: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "matched": self.matched,
            "changed": self.changed,
            "skipped": self.skipped,
            **self.details,
        }


def named_leads_lists(conn: Connection, selection: Selection, user: str, named_by: str = "--id") -> list[int]:
    """The lists of the leads the selection names by id (``--id``, an ids file: ``named_by``), once each is a
    live lead of a list ``user`` can read (archived ones too); otherwise ``ConfigurationError`` naming the others.
    An id that is no such lead matched nothing, and a bulk action reported "tagged 0 leads" with exit code 0."""
    if not selection.ids:
        return []
    rows = conn.execute(
        "SELECT id, list_id FROM leads WHERE id = ANY(%s) AND deleted_at IS NULL AND list_id = ANY(%s)",
        (list(selection.ids), access.readable_list_ids(conn, user)),
    ).fetchall()
    missing = sorted(set(selection.ids) - {r["id"] for r in rows})
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise ConfigurationError(
            f"{named_by}: {len(missing)} lead id(s) do not exist, are deleted or are in lists you cannot read: {shown}"
        )
    return [r["list_id"] for r in rows]


def matched_leads(
    conn: Connection, selection: Selection, user: str, action: str, *, named_by: str = "--id"
) -> list[int]:
    """The selected lead ids, after checking that ``user`` may edit every list they belong to, and every list of
    a lead named by id (``named_leads_lists``): one in an archived list, or one the selection's other options
    leave out, is refused rather than left alone."""
    named = named_leads_lists(conn, selection, user, named_by)
    ids = select_lead_ids(conn, selection, user)
    lists = [r["list_id"] for r in conn.execute("SELECT DISTINCT list_id FROM leads WHERE id = ANY(%s)", (ids,))]
    access.require_all(conn, [*lists, *named], user, "editor", action)
    return ids


def tag(conn: Connection, selection: Selection, user: str, tags: list[str], *, remove: bool = False) -> BulkResult:
    """Add (or with ``remove`` take away) tags on every selected lead."""
    wanted = normalize_tags(tags)
    with conn.transaction():
        ids = matched_leads(conn, selection, user, "untagging its leads" if remove else "tagging its leads")
        if remove:
            changed = conn.execute(
                "DELETE FROM lead_tags WHERE lead_id = ANY(%s) AND tag = ANY(%s)", (ids, wanted)
            ).rowcount
        else:
            changed = conn.execute(
                "INSERT INTO lead_tags (lead_id, tag) SELECT i, t FROM unnest(%s::bigint[]) i, unnest(%s::text[]) t"
                " ON CONFLICT DO NOTHING",
                (ids, wanted),
            ).rowcount
        _audit(conn, user, "untag" if remove else "tag", selection, ids, {"tags": wanted, "changed": changed})
    return BulkResult("untag" if remove else "tag", len(ids), changed, details={"tags": wanted, "tagRows": changed})


def normalized_value(name: str, raw: str, country: str | None = None, default_region: str = "US") -> Any:
    """The value as the import would store it in ``name`` (a phone read in ``country``, else in
    ``default_region``); ``ConfigurationError`` saying what was expected. An empty value clears the field."""
    from leads_pipeline.lib import normalize as norm

    value, problem = norm.one_value(name, raw, country, default_region)
    if problem is not None:
        raise ConfigurationError(f"{name} {raw!r}: {problem}")
    return value


def derived_keys(
    conn: Connection, ids: list[int], changing: dict[str, Any] | None = None
) -> tuple[list[int], list[str | None], list[str | None]]:
    """The ids, company keys and name keys of these leads as the import derives them, from their stored name and
    company with ``changing`` (a field and the value it is being set to) applied first."""
    import pandas as pd

    from leads_pipeline.lib import normalize as norm

    rows = list(conn.execute("SELECT id, first_name, last_name, company FROM leads WHERE id = ANY(%s)", (ids,)))
    if not rows:
        return [], [], []
    frame = pd.DataFrame(rows).assign(**(changing or {}))
    frame = frame.astype({"first_name": norm.STRING, "last_name": norm.STRING, "company": norm.STRING})
    company_key = norm.company_key(frame["company"])
    name_key = norm.name_key(frame["first_name"], frame["last_name"], company_key)
    return (
        [int(i) for i in frame["id"]],
        [None if pd.isna(v) else v for v in company_key],
        [None if pd.isna(v) else v for v in name_key],
    )


def refresh_keys(conn: Connection, ids: list[int]) -> None:
    """Recompute company_key and name_key of leads whose name or company changed, as the import derives them."""
    keys = derived_keys(conn, ids)
    if not keys[0]:
        return
    conn.execute(
        "UPDATE leads l SET company_key = k.company_key, name_key = k.name_key"
        " FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS k(id, company_key, name_key) WHERE l.id = k.id",
        keys,
    )


_RESPELLED_PER_BATCH: Final = 50_000


def respell_company_keys(conn: Connection) -> None:
    """sql/044, in its transaction: the leads it listed have a company with a German umlaut, now spelled out in
    the key (``_respell_company_keys``)."""
    _respell_company_keys(conn, _UMLAUT)


def respell_slashed_company_keys(conn: Connection) -> None:
    """sql/109, in its transaction: the leads it listed have a company with a slash, as the legal forms A/S and S/A
    are written, now dropped from the key (``_respell_company_keys``)."""
    _respell_company_keys(conn, _SLASH)


def split_family_first_names(conn: Connection) -> None:
    """sql/239, in its transaction: the leads it listed (family_first_split) keep a Chinese or Korean full name an
    earlier import did not split whole in the last name (王伟, no first name). Their first and last name become the
    import's split of it (``normalize.complete_names``: 伟 and 王, in the lead's country: a Japanese one stays
    whole), their full name stays (sql/165 joins them back as written), their name keys follow. Not a change of
    the lead, as a key's respelling is not: its updated_at and write transaction stay, and an undo of its import
    stays possible; a CRM push sends the names, whose mapped values changed."""
    import pandas as pd

    from leads_pipeline.lib import normalize as norm

    rows = list(
        conn.execute("SELECT l.id, l.last_name, l.country FROM leads l JOIN family_first_split USING (id) ORDER BY id")
    )
    if not rows:
        return
    frame = pd.DataFrame(rows).astype({"last_name": norm.STRING, "country": norm.STRING})
    names = norm.complete_names(None, None, frame["last_name"], frame.index, frame["country"])
    split = frame.assign(first=names.first_name, last=names.last_name).dropna(subset=["first"])
    ids, firsts, lasts = [int(i) for i in split["id"]], list(split["first"]), list(split["last"])
    for start in range(0, len(ids), _RESPELLED_PER_BATCH):
        end = start + _RESPELLED_PER_BATCH
        conn.execute(
            "UPDATE leads l SET first_name = k.first_name, last_name = k.last_name"
            " FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS k(id, first_name, last_name) WHERE l.id = k.id",
            (ids[start:end], firsts[start:end], lasts[start:end]),
        )
        refresh_keys(conn, ids[start:end])


def rekey_family_first_names(conn: Connection) -> None:
    """sql/240, in its transaction: the leads it listed (family_first_rekey) have a Chinese, Japanese or Korean
    name in two parts, now keyed as its full name is written (``normalize.name_key``). Not a change of the lead:
    its updated_at and write transaction stay."""
    ids = [int(r["id"]) for r in conn.execute("SELECT id FROM family_first_rekey ORDER BY id")]
    for start in range(0, len(ids), _RESPELLED_PER_BATCH):
        refresh_keys(conn, ids[start : start + _RESPELLED_PER_BATCH])


def _respell_company_keys(conn: Connection, names: re.Pattern[str]) -> None:
    """Recompute the company and name keys of the leads a migration listed (company_key_refresh) with the import's
    own rule, and the name keys of the company profiles whose name ``names`` finds; a profile cached under a
    lead's old "name:" key is copied to its new one (it answered for both spellings of the name until now). The
    keys are not a change of the lead: its updated_at and write transaction stay, and an undo of its import stays
    possible."""
    conn.execute(
        "CREATE TEMP TABLE respelled ON COMMIT DROP AS"
        " SELECT l.id, l.company_key AS old_key FROM leads l JOIN company_key_refresh r ON r.id = l.id"
    )
    ids = [int(r["id"]) for r in conn.execute("SELECT id FROM respelled ORDER BY id")]
    for start in range(0, len(ids), _RESPELLED_PER_BATCH):
        refresh_keys(conn, ids[start : start + _RESPELLED_PER_BATCH])
    profiles = [r["name"] for r in conn.execute("SELECT DISTINCT name FROM company_profiles WHERE name IS NOT NULL")]
    profiles = [n for n in profiles if names.search(n)]
    if profiles:
        import pandas as pd

        from leads_pipeline.lib import normalize as norm

        keys = norm.company_key(pd.Series(profiles, dtype=norm.STRING))
        conn.execute(
            "UPDATE company_profiles p SET name_key = k.name_key FROM unnest(%s::text[], %s::text[]) AS k(name,"
            " name_key) WHERE p.name = k.name",
            (profiles, [None if pd.isna(v) else v for v in keys]),
        )
    conn.execute(
        "INSERT INTO company_profiles (lookup_key, provider, domain, status, name, name_key, profile, sources,"
        " credits, details, job_id, fetched_at, expires_at)"
        " SELECT DISTINCT ON (moved.new_key, p.provider) moved.new_key, p.provider, p.domain, p.status, p.name,"
        " p.name_key, p.profile, p.sources, p.credits, p.details, p.job_id, p.fetched_at, p.expires_at"
        " FROM (SELECT DISTINCT 'name:' || r.old_key AS old_key, 'name:' || l.company_key AS new_key"
        " FROM respelled r JOIN leads l ON l.id = r.id WHERE l.company_key IS DISTINCT FROM r.old_key"
        " AND l.company_key IS NOT NULL AND r.old_key IS NOT NULL) moved"
        " JOIN company_profiles p ON p.lookup_key = moved.old_key"
        " ORDER BY moved.new_key, p.provider, p.fetched_at DESC ON CONFLICT DO NOTHING"
    )
    conn.execute("DROP TABLE respelled")


_UMLAUT: Final = re.compile("[äöüÄÖÜ]|[aouAOU]\u0308")
_SLASH: Final = re.compile("[/\uff0f]")  # (a full-width one is a slash in the key)


def _values_by_country(
    conn: Connection, ids: list[int], name: str, raw: str, default_region: str
) -> dict[Any, list[int]]:
    """The selected leads grouped by the value ``raw`` becomes in ``name`` for each: a phone written without its
    country code is read in each lead's country, then in ``default_region``, as the import reads a row's (a German
    lead's "030 1234567" is +49301234567, not a US number); a number valid in none of their countries is refused."""
    if name not in PHONE_EXTENSIONS:
        return {normalized_value(name, raw): ids}
    groups: dict[Any, list[int]] = {}
    for row in conn.execute(
        "SELECT country, array_agg(id ORDER BY id) AS ids FROM leads WHERE id = ANY(%s) GROUP BY country"
        " ORDER BY country NULLS FIRST",
        (ids,),
    ):
        groups.setdefault(normalized_value(name, raw, row["country"], default_region), []).extend(row["ids"])
    return groups or {normalized_value(name, raw, None, default_region): []}


def _assignment(name: str, value: Any, raw: str) -> tuple[sql.Composable, sql.Composable, dict[str, Any]]:
    """The SET clause writing ``value`` into canonical field ``name``, the test that it changes a lead, and the
    values both refer to by name (parameters, as the selection's ids are)."""
    if name == "stage" and value is None:
        raise ConfigurationError("stage cannot be empty; set a stage name such as new, mql or sql")
    if name == "stage":  # any text was stored (`bulk set stage qualifed`), which `leads stage set` refuses
        value = check_manual_stage(value)
    if name not in SEALED_FIELDS:
        stored: dict[str, Any] = {name: value}
        compared = [name]
    else:
        stored = lead_columns(name, value)  # sealed, with its blind index; changed = another index
        compared = [f"{name}_bidx"]
    if name in PHONE_EXTENSIONS:  # the number's own extension (or none) goes with it
        from leads_pipeline.lib.normalize import phone_extension

        stored[PHONE_EXTENSIONS[name]] = phone_extension(raw)
        compared.append(PHONE_EXTENSIONS[name])
    assignment = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in stored)
    changed_test = sql.SQL("({})").format(
        sql.SQL(" OR ").join(
            sql.SQL("{} IS DISTINCT FROM {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in compared
        )
    )
    return assignment, changed_test, stored


def set_field(
    conn: Connection, selection: Selection, user: str, name: str, raw: str, *, default_region: str = "US"
) -> BulkResult:
    """Set one field (canonical, ``stage`` or ``custom.NAME``) to a value on every selected lead; an empty value
    clears it. Canonical values are normalized and checked as an import would, a phone without country code read
    in each lead's country, then in ``default_region`` (the import's ``--default-region``)."""
    check_default_region(default_region)
    custom = name[len(CUSTOM_PREFIX) :] if name.startswith(CUSTOM_PREFIX) else None
    if custom is not None:  # "custom." made a field named "", a control character one printed to terminals
        if not custom.strip():
            raise ConfigurationError(f"cannot set {name!r}: name the custom field after the dot, as custom.Owner")
        custom = access.printable_name(custom, "a custom field name")
    if custom is None and name not in SETTABLE:
        raise ConfigurationError(
            f"cannot set {name!r}; settable fields: {', '.join(SETTABLE)}, or a custom field as custom.NAME"
        )
    if custom is None and name not in PHONE_EXTENSIONS:
        normalized_value(name, raw)  # refused before anything is selected
    with conn.transaction():
        ids = matched_leads(conn, selection, user, "editing its leads")
        groups: list[tuple[Any, list[int], sql.Composable, sql.Composable, dict[str, Any]]]
        if custom is not None:  # cleaned as an import cleans a custom column (its line breaks kept)
            value = normalized_value(name, raw)
            assignment = sql.SQL(
                "custom = custom - %(custom_name)s::text"
                if value is None
                else "custom = jsonb_set(custom, ARRAY[%(custom_name)s::text], to_jsonb(%(custom_value)s::text))"
            )
            changed_test = sql.SQL("custom ->> %(custom_name)s::text IS DISTINCT FROM %(custom_value)s::text")
            values = {"custom_name": custom, "custom_value": value}
            groups = [(value, ids, assignment, changed_test, values)]
        else:
            by_value = _values_by_country(conn, ids, name, raw, default_region)
            if name in SEALED_FIELDS and name != "street" and privacy.suppressed_values(conn, name, list(by_value)):
                raise ConfigurationError(
                    f"{name}: this {'address' if name == 'email' else 'number'} belongs to a person erased on"
                    " request (`leads privacy delete`); it is not stored again"
                )
            groups = [(value, group, *_assignment(name, value, raw)) for value, group in by_value.items()]
        duplicates: set[int] = set()
        written: AbstractContextManager[list[int]] = (
            search_index.search_rows_rebuilt(conn) if name in search_index.SEARCHED_FIELDS else nullcontext([])
        )
        with written as changed_ids:
            for value, group, setting, changes, values in groups:
                skipped = _set_collisions(conn, group, name, value)
                duplicates |= skipped
                targets = [i for i in group if i not in skipped]
                if name in _KEY_INPUTS:  # the keys derived from it in the same write: each row is rewritten once
                    keys = sql.SQL(", company_key = k.company_key, name_key = k.name_key")
                    chosen = sql.SQL(
                        "FROM unnest(%(ids)s::bigint[], %(company_keys)s::text[], %(name_keys)s::text[])"
                        " AS k(id, company_key, name_key) WHERE l.id = k.id"
                    )
                    derived = derived_keys(conn, targets, {name: value})
                    params = {**values, "ids": derived[0], "company_keys": derived[1], "name_keys": derived[2]}
                else:
                    keys, chosen, params = sql.SQL(""), sql.SQL("WHERE l.id = ANY(%(ids)s)"), {**values, "ids": targets}
                changed_ids += [
                    r["id"]
                    for r in conn.execute(
                        sql.SQL("UPDATE leads l SET {}{}, updated_at = now() {} AND {} RETURNING l.id").format(
                            setting, keys, chosen, changes
                        ),
                        params,
                    )
                ]
        _audit(
            conn, user, "set", selection, changed_ids, {"field": name, "matched": len(ids), "skipped": len(duplicates)}
        )
    set_values = [value for value, *_ in groups]
    return BulkResult(
        "set",
        len(ids),
        len(changed_ids),
        len(ids) - len(changed_ids),
        {
            "field": name,
            "value": set_values[0] if len(set_values) == 1 else set_values,
            "skippedAsDuplicates": sorted(duplicates),
        },
    )


def _set_collisions(conn: Connection, ids: list[int], name: str, value: Any) -> set[int]:
    """Selected leads that setting the dedupe key ``name`` to ``value`` would make duplicates in a list deduplicated
    by it: when a live lead of the list has the value already, every selected lead of the list; else all but the
    first (lowest id). As move and copy do, they keep what they have and are reported as skipped."""
    deduped_by = [dedupe for dedupe, keys in MATCH_KEYS.items() if name in keys]
    if value is None or not deduped_by:
        return set()
    column = f"{name}_bidx"
    blind = lead_columns(name, value)[column]
    rows = conn.execute(
        sql.SQL(
            "WITH chosen AS (SELECT l.id, l.list_id FROM leads l JOIN lists s ON s.id = l.list_id"
            " WHERE l.id = ANY(%s) AND s.dedupe = ANY({deduped_by}) AND l.{column} IS DISTINCT FROM {blind}),"
            " taken AS (SELECT DISTINCT l.list_id FROM leads l WHERE l.list_id IN (SELECT list_id FROM chosen)"
            " AND {key} = {blind} AND l.deleted_at IS NULL)"
            " SELECT id FROM (SELECT id, list_id, row_number() OVER (PARTITION BY list_id ORDER BY id) AS nth"
            " FROM chosen) c WHERE nth > 1 OR list_id IN (SELECT list_id FROM taken)"
        ).format(
            deduped_by=sql.Literal(deduped_by),
            column=sql.Identifier(column),
            key=key_column(column, "l"),
            blind=sql.Literal(blind),
        ),
        (ids,),
    )
    return {r["id"] for r in rows}


_BARE_NAMES: Final = "name_key without linkedin_url"
"""Where :func:`_collisions` keeps the name keys of leads without a LinkedIn URL (the only ones a lead with a URL
can duplicate by name)."""


def _collisions(conn: Connection, ids: list[int], target: LeadList) -> set[int]:
    """Selected leads that would duplicate a live lead of the target (one of them already there included) or an
    earlier selected lead (lowest id wins), by the rules an import matches a row with (``imports._match``): the
    target's dedupe keys; for a lead without them, the other contact key, the LinkedIn URL, then name + company
    (for a lead with a LinkedIn URL, only a lead without one). Keys compare by blind index: nothing is opened."""
    primary = [MATCH_COLUMNS[k] for k in MATCH_KEYS[target.dedupe]]
    fallback = [MATCH_COLUMNS[k] for k in CONTACT_KEYS if MATCH_COLUMNS[k] not in primary] + ["linkedin_url"]
    selected = list(
        conn.execute(
            "SELECT id, email_bidx, phone_bidx, linkedin_url, name_key FROM leads WHERE id = ANY(%s) ORDER BY id",
            (ids,),
        )
    )
    taken = _target_keys(conn, target.id, selected, [*primary, *fallback])
    colliding: set[int] = set()
    for lead in selected:
        keys = [c for c in primary if lead[c] is not None]
        if keys:
            found = any(lead[c] in taken[c] for c in keys)
        else:
            names = taken["name_key" if lead["linkedin_url"] is None else _BARE_NAMES]
            found = any(lead[c] is not None and lead[c] in taken[c] for c in fallback) or lead["name_key"] in names
        if found:
            colliding.add(lead["id"])
            continue
        for column in (*primary, *fallback, "name_key"):
            if lead[column] is not None:
                taken[column].add(lead[column])
        if lead["linkedin_url"] is None and lead["name_key"] is not None:
            taken[_BARE_NAMES].add(lead["name_key"])
    return colliding


def _target_keys(
    conn: Connection, list_id: int, selected: list[dict[str, Any]], columns: list[str]
) -> dict[str, set[Any]]:
    """The keys of the selected leads that live leads of the list have, by column (an index lookup per column;
    names through the search rows, as an import looks them up)."""
    taken: dict[str, set[Any]] = {"name_key": set(), _BARE_NAMES: set()}
    for column in columns:
        taken[column] = _keys_in_list(conn, list_id, column, {lead[column] for lead in selected} - {None})
    names = sorted({lead["name_key"] for lead in selected if lead["name_key"] is not None})
    if not names:
        return taken
    wanted = sql.SQL("SELECT unnest(%(names)s::text[]) AS name_key")  # a parameter: a selection's keys run to MBs
    rows = conn.execute(
        sql.SQL(
            "SELECT l.name_key, bool_or(l.linkedin_url IS NULL) AS bare FROM ({} OFFSET 0) x"
            " JOIN leads l ON l.id = x.lead_id WHERE l.deleted_at IS NULL AND l.list_id = {} GROUP BY l.name_key"
        ).format(search_index.leads_by_name(conn, list_id, wanted), sql.Literal(list_id)),
        {"names": names},
    )
    for row in rows:
        taken["name_key"].add(row["name_key"])
        if row["bare"]:
            taken[_BARE_NAMES].add(row["name_key"])
    return taken


def _keys_in_list(conn: Connection, list_id: int, column: str, values: set[Any]) -> set[Any]:
    """Which of ``values`` live leads of the list have in ``column`` (one scan of its (list_id, key) index)."""
    if not values:
        return set()
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT l.{c} AS v FROM leads l WHERE l.list_id = {list} AND {key} = ANY(%s::text[])"
            " AND l.deleted_at IS NULL"
        ).format(c=sql.Identifier(column), list=sql.Literal(list_id), key=key_column(column, "l")),
        (sorted(values),),
    )
    return {r["v"] for r in rows}


def move_to(conn: Connection, selection: Selection, user: str, target: LeadList) -> BulkResult:
    """Move the selected leads into ``target``; a lead that would be a duplicate there (by its dedupe key) stays
    where it is and is reported as skipped."""
    with conn.transaction():
        access.require(conn, target.id, user, "editor", "moving leads into it")
        lock_for_adding(conn, target.id, "moving leads into it")
        ids = matched_leads(conn, selection, user, "moving its leads")
        staying = _collisions(conn, ids, target)
        moving = [i for i in ids if i not in staying]
        with search_index.search_rows_rebuilt(conn) as moved:
            moved += [
                r["id"]
                for r in conn.execute(
                    "UPDATE leads SET list_id = %s, updated_at = now() WHERE id = ANY(%s) AND list_id <> %s"
                    " RETURNING id",
                    (target.id, moving, target.id),
                )
            ]
        changed = len(moved)
        _audit(conn, user, "move", selection, moving, {"to": f"list:{target.id}", "skipped": len(staying)})
    return BulkResult(
        "move", len(ids), changed, len(staying), {"to": target.name, "skippedAsDuplicates": sorted(staying)}
    )


def copy_to(conn: Connection, selection: Selection, user: str, target: LeadList) -> BulkResult:
    """Copy the selected leads (fields, custom fields and tags) into ``target`` as new leads; a lead that would
    be a duplicate there is skipped. Copies start with no facts: provenance stays with the originals."""
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in _COPIED)
    with conn.transaction():
        access.require(conn, target.id, user, "editor", "copying leads into it")
        lock_for_adding(conn, target.id, "copying leads into it")
        named_leads_lists(conn, selection, user)
        ids = select_lead_ids(conn, selection, user)  # reading is enough on the source lists
        skipped = _collisions(conn, ids, target)
        copying = [i for i in ids if i not in skipped]
        pairs = list(
            conn.execute(
                sql.SQL(
                    "WITH source AS (SELECT * FROM leads WHERE id = ANY(%s::bigint[]) ORDER BY id),"
                    " copied AS (INSERT INTO leads (list_id, {cols}) SELECT {target}, {cols} FROM source"
                    " ORDER BY id RETURNING id)"
                    " SELECT s.id AS source, c.id AS copy FROM"
                    " (SELECT id, row_number() OVER (ORDER BY id) AS n FROM source) s"
                    " JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM copied) c USING (n)"
                ).format(cols=columns, target=sql.Literal(target.id)),
                (copying,),
            )
        )
        conn.execute(
            "INSERT INTO lead_tags (lead_id, tag) SELECT p.copy, t.tag FROM lead_tags t"
            " JOIN unnest(%s::bigint[], %s::bigint[]) AS p(source, copy) ON p.source = t.lead_id",
            ([p["source"] for p in pairs], [p["copy"] for p in pairs]),
        )
        _audit(conn, user, "copy", selection, [p["source"] for p in pairs], {"to": f"list:{target.id}"})
    return BulkResult(
        "copy", len(ids), len(pairs), len(skipped), {"to": target.name, "skippedAsDuplicates": sorted(skipped)}
    )


def _audit(
    conn: Connection, user: str, action: str, selection: Selection, ids: list[int], details: dict[str, Any]
) -> None:
    """The audit entry of a bulk action, in its transaction: the selection described and the leads it changed."""
    audit.record(
        conn,
        user,
        f"leads.{action}",
        "selection",
        {"selection": selection.describe(), **details, **audit.lead_ids(ids)},
        lists=selection.lists,
    )


def count(conn: Connection, selection: Selection, user: str, action: str) -> int:
    """How many live leads the selection matches, for the confirmation of ``action`` on them; refused first, as
    the action would be (``matched_leads``), when ``user`` may not edit one of their lists: a viewer was asked
    "delete 1 leads?" and refused only once they had answered yes."""
    named = named_leads_lists(conn, selection, user)
    rows = list(
        conn.execute(
            sql.SQL("SELECT list_id, count(*) AS n FROM leads l WHERE {} GROUP BY list_id").format(
                where_clause(conn, selection, user)
            )
        )
    )
    access.require_all(conn, [*(r["list_id"] for r in rows), *named], user, "editor", action)
    return sum(int(r["n"]) for r in rows)


def delete(conn: Connection, selection: Selection, user: str) -> BulkResult:
    """Soft-delete the selected leads (``deleted_at``); ``restore`` brings them back."""
    with conn.transaction():
        ids = matched_leads(conn, selection, user, "deleting its leads")
        hold_lists_of(conn, ids)
        # held for update first, as a merge holds its leads: a push batch holding them (key share) waits for the
        # delete and leaves them out, where it sent and linked leads whose delete was not committed yet
        conn.execute("SELECT id FROM leads WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,))
        stamp = conn.execute(
            "UPDATE leads SET deleted_at = now(), updated_at = now() WHERE id = ANY(%s) RETURNING deleted_at",
            (ids,),
        ).fetchone()
        _audit(conn, user, "delete", selection, ids, {})
    deleted_at = stamp["deleted_at"].isoformat() if stamp else None
    return BulkResult("delete", len(ids), len(ids), details={"deletedAt": deleted_at, "ids": ids[:1000]})


RESTORE_HINT: Final = "nothing restored; `leads audit --action leads.delete` lists the ids of deleted leads"


def restore(conn: Connection, ids: list[int], user: str) -> BulkResult:
    """Bring soft-deleted leads back (not those a merge removed: `leads merges undo` restores those)."""
    with conn.transaction():
        found = list(
            conn.execute(
                "SELECT id, list_id, deleted_at IS NOT NULL AND merged_into IS NULL AS deleted FROM leads"
                " WHERE id = ANY(%s)",
                (ids,),
            )
        )
        if set(ids) - {r["id"] for r in found}:  # all of them refused, as to a stranger to their lists
            raise NotFoundError(access.not_shared(_leads_named(ids), RESTORE_HINT))
        return _restore_found(conn, ids, [r for r in found if r["deleted"]], user)


def restore_deleted_at(conn: Connection, deleted_at: datetime, user: str) -> BulkResult:
    """Bring back the leads one ``delete`` removed, found by the time it stamped on all of them (its transaction's,
    ``deletedAt`` in its result): a delete of 100k leads names only its first ids, and no command line holds them
    all as ``--id`` options. Leads of lists the user cannot read are not looked at."""
    with conn.transaction():
        rows = list(
            conn.execute(
                "SELECT id, list_id FROM leads WHERE deleted_at = %s AND merged_into IS NULL AND list_id = ANY(%s)"
                " ORDER BY id",
                (deleted_at, access.readable_list_ids(conn, user)),
            )
        )
        if not rows:
            raise NotFoundError(
                f"no lead of your lists was deleted at {deleted_at.isoformat()}: nothing restored (`leads audit"
                " --action leads.delete` shows when each delete ran)"
            )
        return _restore_found(conn, [r["id"] for r in rows], rows, user)


def _leads_named(ids: list[int]) -> str:
    return f"lead {', '.join(map(str, ids))}"


def _restore_found(conn: Connection, ids: list[int], rows: list[dict[str, Any]], user: str) -> BulkResult:
    """Restore ``rows`` (id, list_id: the soft-deleted leads among ``ids``, read once by the caller) once the user
    is an editor of their lists and none of those lists is deleted."""
    lists = [r["list_id"] for r in rows]
    access.require_all(conn, lists, user, "editor", "restoring its leads", subject=_leads_named(ids), hint=RESTORE_HINT)
    in_deleted_list = conn.execute("SELECT 1 FROM lists WHERE id = ANY(%s) AND deleted_at IS NOT NULL", (lists,))
    if in_deleted_list.fetchone():
        raise ConfigurationError("some of these leads belong to a deleted list; they cannot be restored")
    changed = conn.execute(
        "UPDATE leads SET deleted_at = NULL, updated_at = now() WHERE id = ANY(%s)", ([r["id"] for r in rows],)
    ).rowcount
    audit.record(conn, user, "leads.restore", "leads", audit.lead_ids([r["id"] for r in rows]))
    return BulkResult("restore", len(ids), changed, len(ids) - changed)


def export_custom_columns(conn: Connection, selection: Selection, user: str) -> list[str]:
    """``custom.NAME`` for every custom field the selected leads carry, sorted: the export's extra columns."""
    return _custom_columns(conn, where_clause(conn, selection, user))


def _custom_columns(conn: Connection, where: sql.Composable) -> list[str]:
    query = sql.SQL("SELECT DISTINCT jsonb_object_keys(l.custom) AS k FROM leads l WHERE {} ORDER BY 1").format(where)
    return [f"{CUSTOM_PREFIX}{r['k']}" for r in conn.execute(query)]


def sellable_ids(conn: Connection, ids: list[int]) -> set[int]:
    """Which of these leads may be exported (``privacy.sellable``: no do-not-sell opt-out)."""
    query = sql.SQL("SELECT l.id FROM leads l WHERE l.id = ANY(%s) AND {}").format(privacy.sellable("l"))
    return {int(r["id"]) for r in conn.execute(query, (ids,))}


@dataclass(frozen=True)
class Export:
    """A bulk export's selection, evaluated once into the transaction's temporary table ``exported`` (each
    selected lead, and whether it may be exported): ``ids`` are the leads :func:`export_rows` writes (the
    selection's, without those who opted out of the sale of their data, ``privacy.sellable``), in id order, for
    the audit entry to name before the first row leaves; ``custom_columns`` the export's extra columns
    (:func:`export_custom_columns` of the selection). Read in one snapshot, the rows are the ones named."""

    ids: list[int]
    custom_columns: list[str]


def select_export(conn: Connection, selection: Selection, user: str) -> Export:
    """Runs the selection's query once (it was run for the custom columns, the ids and the rows: three scans of a
    list for one export) and reads the ids and custom columns from what it found."""
    named_leads_lists(conn, selection, user)
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE exported ON COMMIT DROP AS SELECT l.id, {sellable} AS sellable FROM leads l WHERE {w}"
        ).format(sellable=privacy.sellable("l"), w=where_clause(conn, selection, user))
    )
    conn.execute("ANALYZE exported")  # the rows' join is planned for as many leads as it holds, not a guess
    ids = [int(r["id"]) for r in conn.execute("SELECT id FROM exported WHERE sellable ORDER BY id")]
    return Export(ids, _custom_columns(conn, sql.SQL("l.id IN (SELECT id FROM exported)")))


def export_rows(conn: Connection, batch_rows: int = 5_000) -> Iterator[dict[str, Any]]:
    """Every lead :func:`select_export` found sellable (``LEAD_COLUMNS``, ``custom``, ``list``, ``tags`` in name
    order), streamed through a server-side cursor in id order so an export of a million leads does not hold them
    all in memory."""
    query = sql.SQL(
        "SELECT {cols}, l.custom, s.name AS list, {tags} AS tags"
        " FROM exported e JOIN leads l ON l.id = e.id JOIN lists s ON s.id = l.list_id WHERE e.sellable"
        " ORDER BY l.id"
    ).format(
        cols=sql.SQL(", ").join(sql.SQL("l.{}").format(sql.Identifier(c)) for c in LEAD_COLUMNS),
        tags=sql.SQL(LEAD_TAGS),
    )
    with conn.cursor(name="leads_export") as cursor:
        cursor.itersize = batch_rows
        yield from cursor.execute(query)
