"""The filter language: which leads a search, a bulk action, an enrichment or a CRM sync works on.

A filter is one ``--where "FIELD OP VALUE"``; repeated filters all have to hold (AND). FIELD is a canonical lead
field (``lib/fields.py``), one of ``id stage score created_at updated_at``, or a custom field written
``custom.NAME`` (``custom."Lead Owner"`` when the name has spaces). Operators:

=============================  =====================================================================
``=``, ``!=``                  equal / not equal (text case-insensitively; ``!=`` also matches empty)
``<``, ``<=``, ``>``, ``>=``   numbers and dates (custom fields compare as numbers when VALUE is one, and a
                               leading zero makes it a code: ``custom.Zip = 01234`` is text)
``~``, ``!~``                  text contains / does not contain VALUE, case-insensitively
``in``, ``not in``             one of a comma-separated list: ``country in DE, FR, ES`` (numbers as the import
                               reads them: ``employee_count in 1,000, 2,000``; see ``_list_items``)
``is empty``, ``is not empty`` no value / some value (no VALUE after it)
=============================  =====================================================================

A bad filter raises ``ConfigurationError`` naming the filter, the field and the operators that field allows.
``Selection`` bundles filters with lists, a text query, tags, stages, a score range and explicit ids; the
store turns it into SQL (``lib/store/search.py``). This module is pure: parsing and validation only.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final, Literal

from leads_pipeline.lib.errors import ConfigurationError, InputFileError
from leads_pipeline.lib.fields import CANONICAL_FIELDS, TYPED_FIELDS

FieldKind = Literal["text", "integer", "numeric", "timestamp", "custom"]

FIELD_KINDS: Final[dict[str, FieldKind]] = {
    **{name: "text" for name in CANONICAL_FIELDS},
    **{name: ("integer" if sql_type == "integer" else "numeric") for name, (_, sql_type) in TYPED_FIELDS.items()},
    "id": "integer",
    "stage": "text",
    "score": "integer",
    "created_at": "timestamp",
    "updated_at": "timestamp",
}
"""Every field a filter (or ``--sort``) may name, by kind; custom fields are ``custom.NAME``."""

CUSTOM_PREFIX: Final = "custom."
BIGINT_MAX: Final = 2**63 - 1
"""The largest whole number PostgreSQL compares a whole-number field with (``bigint``): a larger one typed in a
filter ended the command with a traceback (``bigint out of range``)."""
EMPTY_OPS: Final = ("is empty", "is not empty")
TEXT_OPS: Final = ("=", "!=", "~", "!~", "in", "not in", *EMPTY_OPS)
ORDERED_OPS: Final = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", *EMPTY_OPS)
ALLOWED_OPS: Final[dict[FieldKind, tuple[str, ...]]] = {
    "text": TEXT_OPS,
    "integer": ORDERED_OPS,
    "numeric": ORDERED_OPS,
    "timestamp": ORDERED_OPS,
    "custom": ("=", "!=", "<", "<=", ">", ">=", "~", "!~", "in", "not in", *EMPTY_OPS),
}
PERSONAL: Final = frozenset(
    {"first_name", "last_name", "full_name", "email", "phone", "mobile_phone", "linkedin_url", "street", "notes"}
)
"""Fields that name or reach a person (and custom fields, which may hold anything): the values a selection is
filtered by on them are not recorded (``Selection.describe``)."""
HIDDEN: Final = "<value>"


def recorded_values_pattern() -> str:
    """A PostgreSQL regular expression finding, in text that holds filters as typed (a Dagster run's config, JSON
    encoded: ``leads sync --where "last_name = Garcia"``), a filter on a person's details (``PERSONAL``, custom
    fields) with its value; group 1 is the filter up to the value, which :data:`HIDDEN` replaces as
    ``Filter.describe`` leaves it out (a value left out already is not found again). The value ends where the
    JSON string does, its escapes included: Dagster writes "Müller" as ``M\\u00fcller`` and a quoted value as
    ``\\"Garcia\\"``, where the value ended at the backslash and "\\u00fcller" or the whole quoted name was kept."""
    fields = "|".join(sorted(PERSONAL, key=lambda name: (-len(name), name)))
    custom = r'custom\.(?:\\*"[^"\\]*\\*"|[^\s=!<>~"\\]+)'
    ops = r"\s*(?:!=|<=|>=|!~|=|<|>|~)\s*|\s+(?:not in|in)\s+"
    char = r'(?:[^"\\\s]|\\.)'  # a character of the JSON string, or one of its escapes
    return rf"((?:{fields}|{custom})(?:{ops}))(?!{HIDDEN}){char}(?:{char}|\s+{char})*"


# Longest first, so that "<=" wins over "<" and "is not empty" over "is empty".
_OPERATORS: Final = (
    "is not empty",
    "is empty",
    "not empty",
    "not in",
    "in",
    "!=",
    "<=",
    ">=",
    "!~",
    "=",
    "<",
    ">",
    "~",
)
_WORD_OPS: Final = frozenset({"is not empty", "is empty", "not empty", "not in", "in"})
_FIRST_OPERATOR: Final = re.compile(r"\s*[=!<>~]|\s+(?:in|not|is)(?:\s|$)", re.IGNORECASE)
"""Where an operator starts (a guess at where a custom field name written with spaces ends)."""
_BARE_FIELD: Final = re.compile(r"[^\s=!<>~]+")

Value = str | int | Decimal | datetime | date


@dataclass(frozen=True)
class Filter:
    """One parsed ``--where``: a known field, an operator it allows, and typed values (none for the empty ops,
    several for ``in``)."""

    field: str
    op: str
    values: tuple[Value, ...] = ()
    text: str = ""

    @property
    def kind(self) -> FieldKind:
        return field_kind(self.field)

    def describe(self, *, values: bool = False) -> str:
        """The filter as written; without ``values``, a value compared with a person's details (``PERSONAL``) is
        left out: a recorded description outlives the person's erasure."""
        if values or not self.names_a_person:
            return self.text.strip()
        return f"{self.field} {self.op} {HIDDEN}"

    @property
    def names_a_person(self) -> bool:
        """Whether the filter compares a value with a person's details (``PERSONAL``, custom fields): such a
        value is kept out of whatever outlives the person's erasure."""
        return bool(self.values) and (self.field in PERSONAL or self.custom_name is not None)

    @property
    def custom_name(self) -> str | None:
        """The custom field's name for ``custom.NAME``; None for a canonical field."""
        return self.field[len(CUSTOM_PREFIX) :] if self.field.startswith(CUSTOM_PREFIX) else None


def field_kind(name: str) -> FieldKind:
    """The kind of a filterable field; ``ConfigurationError`` listing the fields if it is unknown."""
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        return "custom"
    if name in FIELD_KINDS:
        return FIELD_KINDS[name]
    raise ConfigurationError(
        f"unknown field {name!r}; filter on one of {', '.join(FIELD_KINDS)}, or a custom field as custom.NAME"
    )


def _allowed(name: str, kind: FieldKind) -> str:
    described = {"integer": "a number", "numeric": "a number", "timestamp": "a date", "text": "text"}
    what = f" ({described[kind]})" if kind in described else ""
    return f"allowed operators for {name}{what}: {', '.join(ALLOWED_OPS[kind])}"


def _split_field(text: str) -> tuple[str, str]:
    """The field name at the start of a filter and the rest of the text."""
    if text.startswith(CUSTOM_PREFIX + '"'):
        end = text.find('"', len(CUSTOM_PREFIX) + 1)
        if end < 0:
            raise _Refused("the custom field name has no closing quote")
        return CUSTOM_PREFIX + text[len(CUSTOM_PREFIX) + 1 : end], text[end + 1 :]
    match = _BARE_FIELD.match(text)
    if not match:
        raise _Refused('expected FIELD OP VALUE, like "country = DE"')
    return match.group(0), text[match.end() :]


def _split_op(rest: str, name: str, kind: FieldKind) -> tuple[str, str]:
    stripped = rest.lstrip()
    lowered = stripped.lower()
    for op in _OPERATORS:
        if not lowered.startswith(op):
            continue
        after = stripped[len(op) :]
        if op in _WORD_OPS and after and not after[0].isspace():
            continue
        return ("is not empty" if op == "not empty" else op), after.strip()
    if name.startswith(CUSTOM_PREFIX) and stripped:  # "custom.Lead Source = X" reads as custom.Lead, then "Source"
        rest_of_name = _FIRST_OPERATOR.split(" " + stripped, maxsplit=1)[0].strip()
        quoted = f'{CUSTOM_PREFIX}"{name[len(CUSTOM_PREFIX) :]} {rest_of_name}"'
        raise _Refused(
            f"no operator after {name}; a custom field name with spaces goes in quotes, like"
            f" {quoted}; {_allowed(name, kind)}"
        )
    raise _Refused(f"no operator after {name}; {_allowed(name, kind)}")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _typed(name: str, kind: FieldKind, raw: str, written_as: str) -> Value:
    if kind in ("integer", "numeric"):
        number = _number(raw, whole=kind == "integer")
        if number is None:
            what = "a whole number" if kind == "integer" else "a number"
            raise _Refused(f"{name} is {what}; got {raw!r}{_range_hint(name, raw, written_as)}")
        if kind == "integer" and not -BIGINT_MAX - 1 <= number <= BIGINT_MAX:
            raise _Refused(f"{name} is a whole number between {-BIGINT_MAX - 1} and {BIGINT_MAX}; got {raw!r}")
        if isinstance(number, Decimal) and _beyond_double(number):
            raise _Refused(
                f"{raw!r} is beyond the numbers {name} holds (the import reads them as doubles:"
                " within about ±1.8e308, none but 0 nearer to 0 than about 1e-308); compare with one such as 3200000"
            )
        return number
    if kind == "timestamp":
        try:
            return datetime.fromisoformat(raw) if "T" in raw or " " in raw else _day(raw)
        except ValueError:
            raise _Refused(f"{name} is a date; got {raw!r} (write 2026-03-31 or 2026-03-31T12:00)") from None
    return raw


_RANGE: Final = re.compile(r"[0-9](?:[a-df-z][a-z]*)?\s*(?:-|\u2013|\u2014|to)\s*[$€£¥₹]?[0-9]", re.IGNORECASE)
"""A range like "51-200", "$1M-$10M" or "1k to 5k" (not an exponent: "1e-5")."""


_RANGE_ENDS: Final = re.compile(r"^(.*?[0-9][a-z]*)\s*(?:-|\u2013|\u2014|to)\s*(.+)$", re.IGNORECASE)


def _range_hint(name: str, raw: str, written_as: str) -> str:
    """How to write a range as the two filters it takes: refused with no more than "is a whole number; got
    '51-200'", a range left the user guessing what a filter wanted."""
    ends = _RANGE_ENDS.match(raw) if _RANGE.search(raw) else None
    if ends is None:
        return ""
    low, high = ends.groups()
    if written_as.startswith("--"):
        return f' (a range: write two filters, {written_as} "{name} >= {low}" {written_as} "{name} <= {high}")'
    return f' (a range: write two filters, "{name} >= {low}" and "{name} <= {high}")'


def _number(raw: str, *, whole: bool) -> int | Decimal | None:
    """A number written as the import reads one (``lib/normalize.py`` ``to_int``, ``to_number``): "1,000",
    "1.000" (a count), "10k", "$3.2M", else as Python does ("1.5e6"); None if it is none. A range ("51-200"),
    which the import reads as its lower bound, is refused: a filter compares with one number."""
    if _RANGE.search(raw):
        return None
    import pandas as pd

    from leads_pipeline.lib.normalize import STRING, to_int, to_number

    parsed = (to_int if whole else to_number)(pd.Series([raw], dtype=STRING)).values.iloc[0]
    if not pd.isna(parsed):
        return int(parsed) if whole else Decimal(repr(float(parsed)))
    try:
        number = int(raw) if whole else Decimal(raw)
    except (ValueError, InvalidOperation):
        return None
    return number if isinstance(number, int) or number.is_finite() else None


def _beyond_double(number: Decimal) -> bool:
    """Whether a number lies beyond the doubles the import stores an amount as (``to_number``): no lead has such a
    value, and PostgreSQL's ``numeric`` cannot even hold "1e5000000" or "1e-5000000", which ended a search with
    ``value overflows numeric format``."""
    as_double = float(number)
    return math.isinf(as_double) or (number != 0 and as_double == 0)


def _day(raw: str) -> date:
    """A day without a time: the whole day (``created_at = 2026-03-31`` is any time that day, ``<=`` includes it)."""
    return date.fromisoformat(raw)


_SPACED_COMMA: Final = re.compile(r",\s+")
_ITEM_COMMA: Final = re.compile(r"(?<![0-9]),|(?<=0)(?<![0-9]0),|,(?![0-9]{3}(?![0-9]))")
"""A comma that separates items of a list of numbers written without spaces: not one between a digit and
exactly three digits, which groups thousands ("1,000"), unless the digit is a 0 alone, which starts no thousands
group: "employee_count in 0,100" was refused as the one number "0,100"."""


def _list_items(inner: str, kind: FieldKind) -> list[str]:
    """The items of an ``in`` list. Numbers are read as the import reads each (``_number``), so a comma inside
    one must not split it: where a comma followed by a space separates items ("1,000, 2,000", "1,5 Mio, 2,5")
    only such commas do, else every comma but one grouping thousands ("10,20,1,500" is 10, 20 and 1500). So in a
    custom field, which holds a number as the file wrote it ("1,000", "1,5") and compares as a number when it is
    one: split at every comma, "custom.Visits in 1,000, 2,000" found the leads with 1, 0 or 2 visits."""
    if kind not in ("integer", "numeric", "custom"):
        return inner.split(",")
    return (_SPACED_COMMA if _SPACED_COMMA.search(inner) else _ITEM_COMMA).split(inner)


class _Refused(Exception):
    """Why a filter cannot be read; :func:`parse_filter` names the filter and where it was written."""


def parse_filter(text: str, written_as: str = "--where") -> Filter:
    """Parse ``FIELD OP VALUE``; errors name the filter, the field and the operators it allows, after
    ``written_as``: where the filter was written, the command-line option by default, else such as a connection
    file's ``where`` (a refusal there read "--where ...", an option its author never typed). Read composed (NFC),
    as the values are stored: a value pasted decomposed (from a macOS file name) finds them."""
    text = unicodedata.normalize("NFC", text)
    if not text.strip():
        raise ConfigurationError(f'{written_as} needs FIELD OP VALUE, like "country = DE"; got an empty filter')
    try:
        return _parse(text, written_as)
    except _Refused as exc:
        raise ConfigurationError(f"{written_as} {text!r}: {exc}") from None


def _parse(text: str, written_as: str) -> Filter:
    stripped = text.strip()
    if "\x00" in text:  # from a run's config ("\u0000"): PostgreSQL text cannot hold it, the query failed
        raise _Refused("a NUL character is in no lead's value; remove it")
    name, rest = _split_field(stripped)
    try:
        kind = field_kind(name)
    except ConfigurationError as exc:
        raise _Refused(str(exc)) from None
    op, raw = _split_op(rest, name, kind)
    if op not in ALLOWED_OPS[kind]:
        raise _Refused(f"operator {op} does not apply to {name}; {_allowed(name, kind)}")
    if raw[:1] in ("=", "<", ">", "!", "~"):
        raise _Refused(f"unexpected {raw[0]!r} after {op}; {_allowed(name, kind)} (quote a value that starts with it)")
    if op in EMPTY_OPS:
        if raw:
            raise _Refused(f"{op} takes no value; got {raw!r}")
        return Filter(name, op, (), text)
    if op in ("in", "not in"):
        inner = raw[1:-1] if raw.startswith("(") and raw.endswith(")") else raw
        items = [_unquote(item.strip()) for item in _list_items(inner, kind)]
        if not any(items):
            raise _Refused(f"{op} needs a comma-separated list of values")
        return Filter(name, op, tuple(_typed(name, kind, item, written_as) for item in items if item), text)
    value = _unquote(raw)
    if not value:
        raise _Refused(f"{op} needs a value after it (use 'is empty' to find leads without {name})")
    if kind == "custom" and op in ("<", "<=", ">", ">=") and _not_finite(value):
        raise _Refused(f"{value!r} is not a finite number; compare {name} with one such as 1000000")
    return Filter(name, op, (_typed(name, kind, value, written_as),), text)


def _not_finite(value: str) -> bool:
    """Whether ``value`` reads as a number no column holds ("1e400", "inf", "nan"): a custom field compares as
    text with a value that is no plain number, and ``custom.Visits > 1e400`` matched every value sorting after
    "1e400" as text (any starting with 2 to 9)."""
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return False


@dataclass(frozen=True)
class Sort:
    """``--sort FIELD`` (ascending) or ``--sort -FIELD`` (descending); empty values always come last."""

    field: str = "id"
    descending: bool = False

    @classmethod
    def parse(cls, text: str | None) -> Sort:
        if not text:
            return cls()
        descending = text.startswith("-")
        name = text.lstrip("-").strip()
        if name.startswith(CUSTOM_PREFIX) or name not in FIELD_KINDS:
            raise ConfigurationError(
                f"--sort {text!r}: sort on one of {', '.join(FIELD_KINDS)} (prefix '-' for descending)"
            )
        return cls(name, descending)


@dataclass(frozen=True)
class Selection:
    """Which leads: everything given must hold. Empty ``lists`` means every list the user can read (archived ones
    only when named). ``query`` is a substring search over names, the email's domain, company and title (every
    word must appear; a whole email address is matched exactly); ``tags`` and ``stages`` match any of the given
    ones; ``ids`` restricts to explicit lead ids."""

    lists: tuple[str, ...] = ()
    where: tuple[Filter, ...] = ()
    query: str | None = None
    tags: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    score_min: int | None = None
    score_max: int | None = None
    ids: tuple[int, ...] = field(default=())

    @classmethod
    def build(
        cls,
        *,
        lists: list[str] | None = None,
        where: list[str] | None = None,
        query: str | None = None,
        tags: list[str] | None = None,
        stages: list[str] | None = None,
        score_min: int | None = None,
        score_max: int | None = None,
        ids: list[int] | None = None,
    ) -> Selection:
        """A selection from command-line options, with the ``--where`` strings parsed and checked."""
        for bound, flag in ((score_min, "--score-min"), (score_max, "--score-max")):
            if bound is not None and not 0 <= bound <= 100:
                raise ConfigurationError(f"{flag} must be between 0 and 100; got {bound}")
        if score_min is not None and score_max is not None and score_min > score_max:
            raise ConfigurationError(f"--score-min {score_min} is above --score-max {score_max}")
        return cls(
            lists=tuple(lists or ()),
            where=tuple(parse_filter(text) for text in where or ()),
            query=(query or "").strip() or None,
            tags=tuple(unicodedata.normalize("NFC", tag.strip()) for tag in tags or ()),  # as tags are stored
            stages=tuple(stages or ()),
            score_min=score_min,
            score_max=score_max,
            ids=tuple(ids or ()),
        )

    def describe(self, *, values: bool = False) -> str:
        """A short human description, for batch records, audit entries and confirmations. Recorded ones (the
        default) leave out the values compared with a person's details and the text searched for (a name, as
        likely as not): the batch and the audit log outlive the person's erasure. ``values``: as typed, for the
        user who typed them."""
        parts = [f"lists {', '.join(self.lists)}" if self.lists else "all readable lists"]
        parts += [f.describe(values=values) for f in self.where]
        if self.query:
            parts.append(f"text {self.query!r}" if values else f"text {HIDDEN}")
        if self.tags:
            parts.append(f"tag {'|'.join(self.tags)}")
        if self.stages:
            parts.append(f"stage {'|'.join(self.stages)}")
        if self.score_min is not None or self.score_max is not None:
            low = 0 if self.score_min is None else self.score_min
            high = 100 if self.score_max is None else self.score_max
            parts.append(f"score {low}-{high}")
        if self.ids:
            parts.append(f"{len(self.ids)} ids")
        return "; ".join(parts)


def read_ids_file(path: Path) -> list[int]:
    """Lead ids from a file (``--ids FILE`` of enrich and score): one per line (blank lines and ``#`` comments
    ignored), or a CSV export whose first column, or its ``id``/``lead_id``/``leadId`` column, holds them."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise InputFileError(path, f"cannot read the ids file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise InputFileError(path, "not a UTF-8 text file of lead ids") from exc
    ids: list[int] = []
    column = 0
    for number, line in enumerate(lines, start=1):
        cells = [c.strip().strip('"') for c in line.split("#", 1)[0].split(",")]
        if not cells[0] and len(cells) == 1:
            continue
        if number == 1 and not cells[0].isdigit():
            names = [c.casefold() for c in cells]
            column = next((i for i, c in enumerate(names) if c in ("id", "lead_id", "leadid")), 0)
            continue
        value = cells[column] if column < len(cells) else ""
        if not (value.isascii() and value.isdigit()):  # "²" is a digit to isdigit, not to int
            raise InputFileError(path, f"line {number}: expected a lead id (a whole number), found {value!r}")
        ids.append(int(value))
    if not ids:
        raise InputFileError(path, "no lead ids in the file")
    return ids
