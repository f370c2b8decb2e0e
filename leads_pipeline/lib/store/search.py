"""Selections of leads in SQL: search pages with keyset pagination, matching ids, and selection batches.

``Selection`` (``lib/filters.py``) says which leads; this module resolves its lists against the acting user's
roles (``lib/store/access.py``), compiles its filters to parameterised SQL and runs it. Other stages use it as:

- ``select_lead_ids(conn, selection, user)``: the matching live lead ids, in id order;
- ``create_selection_batch(conn, selection, user)``: a ``batches`` row of kind 'selection' plus its
  ``batch_leads``, whose id is the Dagster partition key for enrichment, scoring or CRM sync of those leads;
- ``search(conn, selection, user, sort=..., limit=..., after=...)``: one page and the cursor of the next.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import phonenumbers
from psycopg import sql

from leads_pipeline.lib.countries import country_code
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.fields import SHOWN_FIELDS
from leads_pipeline.lib.filters import FIELD_KINDS, Filter, Selection, Sort
from leads_pipeline.lib.privacy.crypto import SEALED_FIELDS, blind_index
from leads_pipeline.lib.scoring.stages import MANUAL_STAGES
from leads_pipeline.lib.store import access, search_index
from leads_pipeline.lib.store.audit import mask
from leads_pipeline.lib.store.db import key_column
from leads_pipeline.lib.store.lists import Connection, get_list

LEAD_COLUMNS: Final[tuple[str, ...]] = ("id", "list_id", *SHOWN_FIELDS, "stage", "score", "created_at")
"""The columns a search returns (and a CSV export writes), custom fields aside."""

_SQL_TYPES: Final = {"integer": "bigint", "numeric": "numeric", "timestamp": "timestamptz", "text": "text"}
_LOWERCASE_STORED: Final = frozenset({"email", "linkedin_url", "website", "company_domain"})
_NUMBER: Final = r"^\s*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]{1,3})?\s*$"
"""A custom value compared as a number. One with a leading zero is a code (postal code 01234, customer id 007):
compared as text, so that ``custom.Zip = 01234`` is not also zip 1234. An exponent ("1e5", "2.5E5", as a file
or a spreadsheet writes a large number) is a number too: ``custom.Revenue > 1e5`` compared as text and took
90000 ("9" sorts after "1"). Its three digits at most keep every such value within PostgreSQL's ``numeric``."""
_SEARCHED: Final = frozenset({"first_name", "last_name", "company", "title"})
"""The fields inside the search text (``lead_search_text``, sql/009 and 010). The email's domain is in it too,
but filters on the sealed email go through its blind index or domain (``_sealed_filter_sql``)."""
_WHOLE_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
WALK_ROWS: Final = 20_000
"""How many search rows a text search walks in page order before it asks the trigram index for every match."""
_WALK_TEXT_SHARE: Final = 0.05
"""The walk is skipped when the other conditions are so selective that it would fill a page only for a text
matching more than this share of the rows (a list + ``country = X`` keeps ~0.4% of its leads)."""


@dataclass(frozen=True)
class Page:
    leads: list[dict[str, Any]]
    next_cursor: str | None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _column(name: str) -> sql.Composable:
    return sql.SQL("l.{}").format(sql.Identifier(name))


def _equal_value(name: str, value: str) -> str:
    """The value as the store keeps that field (emails lower-case, countries upper-case, phones E.164, LinkedIn
    URLs canonical: a member id keeps its case)."""
    if name == "linkedin_url":
        # normalize (pandas, pyarrow, pycountry) is loaded by a filter that needs it: a selection by list or
        # ids (`leads score`, `leads enrich`) spent 0.4 s of CPU loading it
        import pandas as pd

        from leads_pipeline.lib import normalize as norm

        url = norm.linkedin_urls(pd.Series([value], dtype="string")).values.iloc[0]
        if not pd.isna(url):
            return str(url)
    if name in _LOWERCASE_STORED:
        return value.strip().lower()
    if name == "country":
        return _country_code(value)
    if name in ("phone", "mobile_phone"):
        try:
            parsed = phonenumbers.parse(value, "US")
        except phonenumbers.NumberParseException:
            return value.strip()
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return value


def _country_code(value: str) -> str:
    """The ISO code the store keeps for a country written as an import reads it (Chile, es, UK -> CL, ES, GB). Any
    other two letters are taken as a code that no lead has; anything else is an error, not an empty result."""
    code, _ = country_code(value.strip())
    if code is not None:
        return code
    if len(value.strip()) == 2 and value.strip().isalpha():
        return value.strip().upper()
    raise ConfigurationError(
        f"--where country: {value!r} is not a country; use a country name or an ISO 3166 code such as ES"
    )


_DOTTED_I: Final = "i\u0307"
"""What lower() makes of a capital dotted İ, in Python and in PostgreSQL: i and a combining dot above."""


_GREEK_TONOS: Final = (
    "\u03ac\u03ad\u03ae\u03af\u03cc\u03cd\u03ce\u0390\u03b0\u03c2",
    "\u03b1\u03b5\u03b7\u03b9\u03bf\u03c5\u03c9\u03ca\u03cb\u03c3",
)
"""Greek's accented vowels (ά έ ή ί ό ύ ώ ΐ ΰ) without their tonos, and the final sigma ς as the other one: Greek writes
capitals without the tonos, so "ΠΑΠΑΔΟΠΟΥΛΟΣ" is how Παπαδόπουλος is written in capitals, where lower() alone
kept them apart."""


def _caseless(value: str) -> str:
    """A value as a filter compares text case-insensitively (``_caseless_sql``): lower case, with the Turkish
    dotless i (U+0131) and dotted capital İ as i. Turkish writes the dotless i's capital I and i's capital İ, so
    lower() alone made "IŞIK" "işik", and a filter of the word in lower case found nobody where the text search
    (sql/022, which folds both to i) found the lead. Greek's capitals drop the tonos (``_GREEK_TONOS``): a filter
    of a name in capitals found nobody either."""
    folded = value.lower().replace("\u0131", "i").replace(_DOTTED_I, "i")
    return folded.translate(str.maketrans(*_GREEK_TONOS))


def _caseless_sql(target: sql.Composable) -> sql.Composable:
    """``target`` folded as ``_caseless`` folds a value."""
    return sql.SQL("translate(replace(translate(lower({}), {}, 'i'), {}, 'i'), {}, {})").format(
        target, sql.Literal("\u0131"), sql.Literal(_DOTTED_I), *map(sql.Literal, _GREEK_TONOS)
    )


def _text_compare(target: sql.Composable, name: str, f: Filter) -> sql.Composable:
    """Equality on text: exact on the normalized fields (their indexes stay usable), case-insensitive otherwise."""
    exact = name in _LOWERCASE_STORED or name in ("country", "phone", "mobile_phone")
    left = target if exact else _caseless_sql(target)
    values = [_equal_value(name, str(v)) if exact else _caseless(str(v)) for v in f.values]
    return _equality(target, left, f.op, values)


def _equality(target: sql.Composable, left: sql.Composable, op: str, values: Sequence[Any]) -> sql.Composable:
    """``left`` (``target`` as compared) by ``=``, ``!=``, ``in`` or ``not in``; an empty ``target`` differs
    from every value."""
    if op == "=":
        return sql.SQL("{} = {}").format(left, sql.Literal(values[0]))
    if op == "!=":
        return sql.SQL("{} IS DISTINCT FROM {}").format(left, sql.Literal(values[0]))
    if op == "in":
        return sql.SQL("{} = ANY({})").format(left, sql.Literal(list(values)))
    return sql.SQL("({} IS NULL OR NOT {} = ANY({}))").format(target, left, sql.Literal(list(values)))


def _prefilter(name: str, value: str, joined: bool) -> sql.Composable:
    """For a field inside the search text, the same substring condition on that text: implied by the filter
    (so results do not change) and served by the trigram index, so "title ~ founder" needs no table scan."""
    if name not in _SEARCHED:
        return sql.SQL("TRUE")
    if joined:
        return _search_text_like(value)
    return _text_contains([value])


def _sealed_filter_sql(f: Filter) -> sql.Composable:
    """A filter on a sealed field (email, phones, street): equality through the blind index; "contains" on an
    email through its domain (the only part kept in clear); other fields cannot be searched inside."""
    target = _column(f.field)
    if f.op in ("is empty", "is not empty"):
        return sql.SQL("{} IS NULL" if f.op == "is empty" else "{} IS NOT NULL").format(target)
    if f.op in ("~", "!~"):
        if f.field != "email":
            raise ConfigurationError(
                f"--where {f.text!r}: {f.field} is stored encrypted, so it can only be compared whole "
                f"(=, !=, in, not in, is empty)"
            )
        contains = sql.SQL("l.email_domain ILIKE {}").format(sql.Literal(_like(str(f.values[0]).split("@")[-1])))
        return contains if f.op == "~" else sql.SQL("(l.email_domain IS NULL OR NOT {})").format(contains)
    index = key_column(f"{f.field}_bidx", "l")
    if f.field in ("phone", "mobile_phone"):
        return _phone_equality(f, index)
    hashes = [blind_index(f.field, _equal_value(f.field, str(v))) for v in f.values]
    return _equality(index, index, f.op, hashes)


@dataclass(frozen=True)
class _Reading:
    """A number written without its country code, as read in one region: its stored E.164 form and whether an
    import keeps it before any other reading (``normalize.is_first_choice``)."""

    region: str
    e164: str
    first_choice: bool


@functools.lru_cache(maxsize=512)
def _national_readings(value: str) -> tuple[_Reading, ...]:
    """Each reading of a number written without its country code that an import keeps, in each region it can be a
    number of: the import stored a lead's number as read in the lead's country ("030 1234567" of a German lead is
    +49301234567), or, when it is none there, in the import's default region."""
    from leads_pipeline.lib import normalize as norm

    readings = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        try:
            parsed = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if norm.is_kept_number(parsed):  # as the import reads and stores it
            readings.append(_Reading(region, norm.stored_e164(parsed), norm.is_first_choice(parsed)))
    return tuple(readings)


def _read_elsewhere(readings: Sequence[_Reading], hashes: dict[str, str], index: sql.Composable) -> sql.Composable:
    """Leads whose number may be a reading in another region than their country's. An import reads a number in
    its ``--default-region`` (which a lead does not record) when it is no first choice in the row's country
    (``normalize.normalize_phones``): a lead whose country is none of the regions where the number is a first
    choice may have the reading of any region where it is one, and a lead whose country reads no number in it at
    all (or without a country) that of any region. "020 7946 0958" of a French lead imported with
    ``--default-region GB`` is +442079460958; the filter read it in the US and in France only, and missed it."""
    first = [r for r in readings if r.first_choice]
    terms = [
        sql.SQL("(NOT coalesce(l.country = ANY({}), false) AND {} = ANY({}))").format(
            sql.Literal(sorted({r.region for r in group})), index, sql.Literal(sorted({hashes[r.e164] for r in group}))
        )
        for group in (first, readings)
        if group
    ]
    return sql.SQL(" OR ").join(terms) if terms else sql.SQL("FALSE")


def _phone_equality(f: Filter, index: sql.Composable) -> sql.Composable:
    """A phone filter: the number as written with a country code, or else as read in the US (any lead), as read in
    each lead's own country, and as read in another region where the import may have read it
    (``_read_elsewhere``): "phone = 030 1234567" finds a German lead's +49301234567."""
    wanted: list[sql.Composable] = [sql.SQL("FALSE")]
    hashes: set[str] = set()
    for raw in (str(v).strip() for v in f.values):
        anywhere = blind_index(f.field, _equal_value(f.field, raw))
        if anywhere is None:
            continue
        hashes.add(anywhere)
        wanted.append(sql.SQL("{} = {}").format(index, sql.Literal(anywhere)))
        if raw.startswith(("+", "00")):
            continue
        readings = _national_readings(raw)
        hashed = {r.e164: str(blind_index(f.field, r.e164)) for r in readings}  # an E.164 form is never empty
        hashes.update(hashed.values())
        for reading in readings:
            in_region = sql.SQL("l.country = {}").format(sql.Literal(reading.region))
            wanted.append(sql.SQL("({} AND {} = {})").format(in_region, index, sql.Literal(hashed[reading.e164])))
        wanted.append(_read_elsewhere(readings, hashed, index))
    found = sql.SQL("({} = ANY({}) AND coalesce({}, false))").format(
        index, sql.Literal(sorted(hashes)), sql.SQL(" OR ").join(wanted)
    )
    if f.op in ("=", "in"):
        return found
    return sql.SQL("NOT {}").format(found)


def _search_text_like(word: str) -> sql.Composable:
    """The search text contains ``word``, folded as the text is (lower case, no accents: sql/022)."""
    return sql.SQL("x.search_text LIKE search_fold({})").format(sql.Literal(_like(word)))


def _prefiltered(f: Filter) -> bool:
    """Whether the filter carries a condition on the search text (``_prefilter``)."""
    if f.field not in _SEARCHED or f.custom_name:
        return False
    return f.op == "~" or (f.op == "=" and f.kind == "text")


def _text_contains(words: Sequence[str]) -> sql.Composable:
    """Leads whose search text (``lead_search``, sql/009) contains every word, case-insensitively."""
    likes = [_search_text_like(word) for word in words]
    return sql.SQL("l.id IN (SELECT x.lead_id FROM lead_search x WHERE {})").format(sql.SQL(" AND ").join(likes))


def _filter_sql(f: Filter, joined: bool = False) -> sql.Composable:
    """One filter as a parameterised SQL condition on the alias ``l`` (leads)."""
    if f.field in SEALED_FIELDS:
        return _sealed_filter_sql(f)
    custom = f.custom_name
    target: sql.Composable = sql.SQL("(l.custom ->> {})").format(sql.Literal(custom)) if custom else _column(f.field)
    kind = f.kind
    if f.op in ("is empty", "is not empty"):
        empty = (
            sql.SQL("({t} IS NULL OR {t} = '')").format(t=target)
            if kind in ("text", "custom")
            else sql.SQL("{} IS NULL").format(target)
        )
        return empty if f.op == "is empty" else sql.SQL("NOT {}").format(empty)
    if f.op in ("~", "!~"):
        contains = sql.SQL("{} LIKE {}").format(_caseless_sql(target), sql.Literal(_like(_caseless(str(f.values[0])))))
        if f.op == "~":
            return sql.SQL("{} AND {}").format(_prefilter(f.field, str(f.values[0]), joined), contains)
        return sql.SQL("({} IS NULL OR NOT {})").format(target, contains)
    numeric_custom = custom is not None and all(_is_number(v) for v in f.values)
    if kind == "text" or (kind == "custom" and not numeric_custom):
        if f.op == "=":
            return sql.SQL("{} AND {}").format(
                _prefilter(f.field, str(f.values[0]), joined), _text_compare(target, f.field, f)
            )
        if f.op in ("!=", "in", "not in"):
            return _text_compare(target, f.field, f)
        return sql.SQL("{} {} {}").format(
            _caseless_sql(target), sql.SQL(f.op), sql.Literal(_caseless(str(f.values[0])))
        )
    if numeric_custom:
        target = sql.SQL("(CASE WHEN {t} ~ {pattern} THEN ({t})::numeric END)").format(
            t=target, pattern=sql.Literal(_NUMBER)
        )
        values: list[Any] = [Decimal(str(v)) for v in f.values]
        cast = "numeric"
    else:
        values = list(f.values)
        cast = _SQL_TYPES[kind]
    if kind == "timestamp" and not any(isinstance(v, datetime) for v in values):
        target, cast = sql.SQL("({})::date").format(target), "date"  # a day given alone stands for the whole day
    if f.op in ("in", "not in"):
        listed = sql.SQL("{} = ANY({}::{}[])").format(target, sql.Literal(values), sql.SQL(cast))
        return listed if f.op == "in" else sql.SQL("({} IS NULL OR NOT {})").format(target, listed)
    if f.op == "!=":
        return sql.SQL("{} IS DISTINCT FROM {}::{}").format(target, sql.Literal(values[0]), sql.SQL(cast))
    return sql.SQL("{} {} {}::{}").format(target, sql.SQL(f.op), sql.Literal(values[0]), sql.SQL(cast))


def _is_number(value: object) -> bool:
    if isinstance(value, int | Decimal):
        return True
    return re.match(_NUMBER, str(value)) is not None


def filters_condition(filters: Sequence[Filter], *, joined: bool = False) -> sql.Composable:
    """``--where`` filters as one SQL condition on ``leads l`` (all must hold; TRUE for none), values inlined as
    literals: what the other stages (CRM sync) add to their own queries. ``joined``: the query joins
    ``lead_search x ON x.lead_id = l.id``, and the text conditions are on ``x``."""
    if not filters:
        return sql.SQL("TRUE")
    return sql.SQL(" AND ").join(_filter_sql(f, joined) for f in filters)


def resolve_lists(conn: Connection, selection: Selection, user: str) -> list[int]:
    """The ids of the lists the selection covers: the named ones (each must be readable by ``user``), or every
    live, unarchived list the user can read."""
    if not selection.lists:
        return access.readable_list_ids(conn, user, include_archived=False)
    ids: list[int] = []
    for name in selection.lists:
        lead_list = get_list(conn, name, user)
        access.require(conn, lead_list.id, user, "viewer", "reading its leads", write=False)
        ids.append(lead_list.id)
    return ids


def _split_query(query: str | None) -> tuple[list[str], list[sql.Composable]]:
    """The query's words that are substrings of the search text, and the conditions the others make: a whole
    address is looked up through the sealed email's blind index; "@domain" is a search-text word (the text holds
    the domain without its @) whose match must also be where the email's domain begins."""
    texts: list[str] = []
    conditions: list[sql.Composable] = []
    for word in unicodedata.normalize("NFC", query or "").split():  # as names are stored (김민준 pasted as jamo)
        if _WHOLE_EMAIL.match(word):
            email = sql.Literal(blind_index("email", word))
            conditions.append(sql.SQL("{} = {}").format(key_column("email_bidx", "l"), email))
        elif word.startswith("@") and len(word) > 1:
            texts.append(word[1:])
            conditions.append(sql.SQL("l.email_domain LIKE lower({})").format(sql.Literal(_like(word[1:])[1:])))
        else:
            texts.append(word)
    return texts, conditions


def where_clause(
    conn: Connection, selection: Selection, user: str, *, joined: bool = False, list_ids: list[int] | None = None
) -> sql.Composable:
    """The selection as one SQL condition on ``leads l`` (live leads of lists the user can read). ``joined``:
    the caller joins ``lead_search x ON x.lead_id = l.id``, and the query words are conditions on ``x``.
    ``list_ids``: the lists ``resolve_lists`` gave for this selection and user, if the caller has them."""
    lists = sql.Literal(resolve_lists(conn, selection, user) if list_ids is None else list_ids)
    conditions: list[sql.Composable] = [sql.SQL("l.deleted_at IS NULL"), sql.SQL("l.list_id = ANY({})").format(lists)]
    conditions.append(filters_condition(selection.where, joined=joined))
    words, word_conditions = _split_query(selection.query)
    if words and joined:
        conditions.extend(_search_text_like(w) for w in words)
    elif words:
        conditions.append(_text_contains(words))
    conditions.extend(word_conditions)
    if selection.tags:
        conditions.append(
            sql.SQL("EXISTS (SELECT 1 FROM lead_tags t WHERE t.lead_id = l.id AND t.tag = ANY({}))").format(
                sql.Literal(list(selection.tags))
            )
        )
    if selection.stages:
        conditions.append(sql.SQL("l.stage = ANY({})").format(sql.Literal(list(selection.stages))))
    if selection.score_min is not None:
        conditions.append(sql.SQL("l.score >= {}").format(sql.Literal(selection.score_min)))
    if selection.score_max is not None:
        conditions.append(sql.SQL("l.score <= {}").format(sql.Literal(selection.score_max)))
    if selection.ids:
        conditions.append(sql.SQL("l.id = ANY({})").format(sql.Literal(list(selection.ids))))
    return sql.SQL(" AND ").join(conditions)


def unheard_of_stages(conn: Connection, selection: Selection, user: str) -> list[str]:
    """The selection's stages that are none a person may set (``MANUAL_STAGES``) and that no live lead of its
    lists has: a CRM sets stages of its own, so any is searched for as typed, and ``--stage nostage`` (or
    ``MQL``: stages are stored lower-case) found 0 leads with nothing to tell a typo from an empty stage."""
    unknown = [stage for stage in selection.stages if stage not in MANUAL_STAGES]
    if not unknown:
        return []
    held = conn.execute(
        "SELECT DISTINCT stage FROM leads WHERE deleted_at IS NULL AND list_id = ANY(%s) AND stage = ANY(%s)",
        (resolve_lists(conn, selection, user), unknown),
    )
    return sorted(set(unknown) - {r["stage"] for r in held})


def select_lead_ids(conn: Connection, selection: Selection, user: str) -> list[int]:
    """The ids of the live leads matching the selection, in id order."""
    query = sql.SQL("SELECT l.id FROM leads l WHERE {} ORDER BY l.id").format(where_clause(conn, selection, user))
    return [int(r["id"]) for r in conn.execute(query)]


def create_selection_batch(
    conn: Connection,
    selection: Selection,
    user: str,
    *,
    description: str | None = None,
    batch_id: str | None = None,
) -> tuple[str, int]:
    """Record the matching leads as a new batch of kind 'selection' (``batches`` + ``batch_leads``), in one
    transaction; returns the batch id (the Dagster partition key to launch work on) and the number of leads.
    The batch's list is set when the selection names exactly one list; its description never holds an email
    address or a number (masked: batches are not erased with a person). ``batch_id`` names the batch when the
    caller's work has an id of its own (an enrichment job is its batch); by default a fresh one is made."""
    list_ids = resolve_lists(conn, selection, user)
    batch_id = batch_id or f"selection-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with conn.transaction():
        conn.execute(
            "INSERT INTO batches (id, kind, list_id, description) VALUES (%s, 'selection', %s, %s)",
            # masked as the audit log is: a filter such as `email = x` names a person the batch outlives (the
            # names of its lists are kept)
            (
                batch_id,
                list_ids[0] if len(selection.lists) == 1 else None,
                mask(description or selection.describe(), keep=selection.lists),
            ),
        )
        count = conn.execute(
            sql.SQL("INSERT INTO batch_leads (batch_id, lead_id) SELECT {}, l.id FROM leads l WHERE {}").format(
                sql.Literal(batch_id), where_clause(conn, selection, user)
            )
        ).rowcount
    return batch_id, count


def _encode_cursor(sort: Sort, last: dict[str, Any]) -> str:
    value = last[sort.field]
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    payload = json.dumps([sort.field, sort.descending, value, last["id"]])
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: Sort) -> tuple[Any, int]:
    try:
        field, descending, value, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"--after {cursor!r} is not a cursor printed by `leads search`") from exc
    if (field, descending) != (sort.field, sort.descending):
        raise ConfigurationError(
            f"--after {cursor!r} belongs to a search sorted by {'-' if descending else ''}{field}; "
            "repeat that --sort, or start again without --after"
        )
    return value, int(last_id)


def _after_sql(
    sort: Sort, column: sql.Composable, id_column: sql.Composable, value: Any, last_id: int
) -> sql.Composable:
    """Rows after (value, id) in the order ``sort`` NULLS LAST, id ascending."""
    if value is None:
        return sql.SQL("({c} IS NULL AND {id} > {i})").format(c=column, id=id_column, i=sql.Literal(last_id))
    typed = sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(_SQL_TYPES[FIELD_KINDS[sort.field]]))
    beyond = sql.SQL("<" if sort.descending else ">")
    return sql.SQL("({c} {b} {v} OR ({c} = {v} AND {id} > {i}) OR {c} IS NULL)").format(
        c=column, id=id_column, b=beyond, v=typed, i=sql.Literal(last_id)
    )


def _searched_rows(conn: Connection, list_ids: list[int]) -> sql.Composable:
    """The condition on ``lead_search x`` for the rows of these lists: only the partitions of the imports into
    them and the one for no import can hold any (sql/009), and naming them lets the planner skip the rest."""
    built, filling = search_index.partitions_of_lists(conn, list_ids)
    return sql.SQL("x.list_id = ANY({}) AND {}").format(
        sql.Literal(list_ids), search_index.rows_of_imports(built + filling)
    )


def _estimated_rows(conn: Connection, condition: sql.Composable) -> float:
    """The planner's estimate of the live leads matching ``condition`` (no rows are read)."""
    plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM leads l WHERE {}").format(condition)).fetchone()
    return float(plan["QUERY PLAN"][0]["Plan"]["Plan Rows"]) if plan else 1.0


def _others_keep(conn: Connection, selection: Selection, list_ids: list[int]) -> float:
    """The share of the lists' leads the selection's conditions other than the text keep (1.0 when there are
    none), from the planner's statistics: what decides whether walking in page order can fill a page."""
    others = replace(selection, query=None, where=tuple(f for f in selection.where if not _prefiltered(f)))
    if not others.where and not (
        others.tags or others.stages or others.ids or others.score_min is not None or others.score_max is not None
    ):
        return 1.0
    everything = _estimated_rows(conn, where_clause(conn, Selection(), "", list_ids=list_ids))
    return _estimated_rows(conn, where_clause(conn, others, "", list_ids=list_ids)) / max(everything, 1.0)


def _sort_column(field: str, joined: bool) -> sql.Composable:
    """The column a page is ordered by: with the search rows joined, their copies of the sort keys, so that the
    planner can walk a ``lead_search`` partition's index in page order (a frequent word's first matches come
    early) instead of collecting every match and sorting it."""
    if joined and field == "id":
        return sql.SQL("x.lead_id")
    if joined and field == "last_name":
        return sql.SQL("x.last_name")
    return _column(field)


LEAD_TAGS: Final = "ARRAY(SELECT t.tag FROM lead_tags t WHERE t.lead_id = l.id ORDER BY t.tag)"
"""The tags of lead ``l``, in name order: a search page's and an export's (``export.write_leads_csv`` writes them
in one cell)."""


def search(
    conn: Connection,
    selection: Selection,
    user: str,
    *,
    sort: Sort | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Page:
    """One page of matching leads (``LEAD_COLUMNS`` plus ``custom``, ``list`` and ``tags``, in name order) in
    ``sort`` order, and the cursor for the next page (None on the last). Keyset pagination: a page costs the same
    however deep it is. The tags are read for the page's leads only (a lookup by ``lead_tags``' key each)."""
    sort = sort or Sort()
    if sort.field in SEALED_FIELDS:
        raise ConfigurationError(
            f"--sort {sort.field}: {sort.field} is stored encrypted and has no order; sort on another field"
        )
    if not 1 <= limit <= 10_000:
        raise ConfigurationError(f"--limit must be between 1 and 10000; got {limit}")
    joined = bool(_split_query(selection.query)[0]) or any(_prefiltered(f) for f in selection.where)
    list_ids = resolve_lists(conn, selection, user)
    condition = where_clause(conn, selection, user, joined=joined, list_ids=list_ids)
    id_column = _sort_column("id", joined)
    order: sql.Composable
    beyond_cursor: sql.Composable = sql.SQL("TRUE")
    if sort.field == "id":  # never empty: a plain comparison the primary key index serves
        order = sql.SQL("{} DESC" if sort.descending else "{}").format(id_column)
        if after:
            _, last_id = _decode_cursor(after, sort)
            beyond = sql.SQL("<" if sort.descending else ">")
            beyond_cursor = sql.SQL("{} {} {}").format(id_column, beyond, sql.Literal(last_id))
    else:
        column = _sort_column(sort.field, joined)
        direction = sql.SQL("DESC" if sort.descending else "ASC")
        order = sql.SQL("{} {} NULLS LAST, {}").format(column, direction, id_column)
        if after:
            beyond_cursor = _after_sql(sort, column, id_column, *_decode_cursor(after, sort))
    condition = sql.SQL("{} AND {}").format(condition, beyond_cursor)

    def page_query(search_rows: sql.Composable) -> sql.Composed:
        return sql.SQL(
            "SELECT {columns}, l.custom, s.name AS list, {tags} AS tags"
            " FROM leads l JOIN lists s ON s.id = l.list_id{search}"
            " WHERE {condition} ORDER BY {order} LIMIT {limit}"
        ).format(
            columns=sql.SQL(", ").join(_column(c) for c in LEAD_COLUMNS),
            tags=sql.SQL(LEAD_TAGS),
            search=search_rows,
            condition=condition,
            order=order,
            limit=sql.Literal(limit + 1),
        )

    query = page_query(sql.SQL(""))
    if joined:
        searched = _searched_rows(conn, list_ids)
        walkable = sort.field == "id" or (sort.field == "last_name" and not sort.descending)
        if walkable and _others_keep(conn, selection, list_ids) * WALK_ROWS * _WALK_TEXT_SHARE > limit:
            # A frequent word: its first matches in page order are near the start of the walk; a page found
            # within the walk is exactly the page (rows are walked in page order from the cursor on).
            walk = sql.SQL(
                " JOIN (SELECT x.lead_id, x.last_name, x.search_text FROM lead_search x WHERE {} AND {}"
                " ORDER BY {} LIMIT {}) x ON x.lead_id = l.id"
            ).format(searched, beyond_cursor, order, sql.Literal(WALK_ROWS))
            rows = list(conn.execute(page_query(walk)))
            if len(rows) > limit:
                return Page(rows[:limit], _encode_cursor(sort, rows[limit - 1]))
        query = page_query(sql.SQL(" JOIN lead_search x ON x.lead_id = l.id AND {}").format(searched))
    rows = list(conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _encode_cursor(sort, rows[-1]) if more and rows else None)
