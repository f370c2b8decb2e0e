"""Vectorized normalization of lead columns during CSV import.

An import turns 1,000,000 rows into leads in chunks of ~100k rows within a budget of 30 s on 2 cores, so
nothing here loops over rows in Python:

- Pure text work (trimming, case, regexes, Unicode normalization) runs as pyarrow compute kernels on the
  whole column. The patterns below are RE2 patterns and are handed to pyarrow directly rather than through
  ``Series.str``: pandas silently falls back to a per-row Python ``re`` loop for patterns it deems unsafe
  for RE2 (``\\s``, ``$``, ``\\w`` on non-ASCII data...), which would turn a 5 ms step into a 500 ms one.
- Work that needs a Python library (phonenumbers, pycountry, nameparser, email-validator) runs once per
  *distinct* value of the chunk (``dictionary_encode`` + ``take``), behind a bounded module-level
  ``lru_cache`` so values repeated across chunks (company phones, countries) are parsed once per import.

Every function returns Series aligned to the input index with the nullable ``string[pyarrow]`` dtype
(missing is ``pd.NA``, not the ``NaN`` of pandas' default ``str`` dtype) or ``Int64``/``Float64``. Invalid
values become NA in ``values`` and a short reason in ``problems`` (NA where the value is fine or missing),
so the caller can record ``(row, column, value, reason)`` and still import every good row.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Final

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from email_validator import EmailNotValidError, validate_email
from nameparser import HumanName
from nameparser.config import CONSTANTS as NAME_CONSTANTS

from leads_pipeline.lib.countries import country_code
from leads_pipeline.lib.fields import FAMILY_NAME_FIRST, HAN_COMPOUND_FAMILY_NAMES, MULTILINE_FIELDS
from leads_pipeline.lib.filters import CUSTOM_PREFIX

__all__ = [
    "STRING",
    "Names",
    "Normalized",
    "NormalizedPhones",
    "clean_arrow",
    "clean_text",
    "clean_value",
    "company_key",
    "complete_names",
    "country_codes",
    "keeps_lines",
    "linkedin_urls",
    "name_key",
    "normalize_emails",
    "normalize_phones",
    "to_int",
    "to_number",
    "website_to_domain",
]

STRING: Final = pd.StringDtype("pyarrow")
"""Dtype of every text Series returned here: Arrow-backed, with ``pd.NA`` for missing values."""

EMAIL_PROBLEM: Final = "expected an email address like name@example.com"
WEBSITE_PROBLEM: Final = "expected a website like example.com"
LINKEDIN_PROBLEM: Final = "expected a LinkedIn profile or company URL like https://www.linkedin.com/in/name"
PHONE_PROBLEM: Final = "expected a phone number valid for "  # + the row's country or the default region
PHONE_SCIENTIFIC_PROBLEM: Final = (
    "a number Excel showed in scientific notation (4.15555E+11) and saved so, its last digits lost; format the"
    " column as Text in the sheet, type the numbers again and export again"
)
EXTENSION_PROBLEM: Final = "expected the extension (digits) of the row's phone number"
INT_PROBLEM: Final = "expected a whole number like 1200, 1,200 or 1.2k"
NUMBER_PROBLEM: Final = "expected a number like 3200000, 3.2M or $3.2B"

_LARGE_STRING: Final = pa.large_string()
_NULL_STRING: Final = pa.scalar(None, _LARGE_STRING)


# --------------------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Normalized:
    """Normalized values of one column and, row by row, why a value could not be normalized."""

    values: pd.Series  # normalized values, NA when missing or invalid
    problems: pd.Series  # NA, or a short reason such as "expected an email address like name@example.com"


@dataclass(frozen=True)
class NormalizedPhones:
    """Phone numbers in E.164 with their extensions kept apart (E.164 has no room for an extension)."""

    e164: pd.Series  # "+14155550123" or NA
    extension: pd.Series  # "718" or NA
    problems: pd.Series


@dataclass(frozen=True)
class Names:
    """First, last and full name of each row, each completed from the others where it was missing."""

    first_name: pd.Series
    last_name: pd.Series
    full_name: pd.Series


# --------------------------------------------------------------------------------------------------------
# Arrow plumbing
# --------------------------------------------------------------------------------------------------------


def _arrow(s: pd.Series) -> pa.Array:
    """The column as one Arrow ``large_string`` array, whatever dtype ``read_csv`` gave it.

    A numeric column that has gaps arrives as float64 ("9802005297.0"); whole floats are rendered as
    integers so phone numbers and counts do not grow a ".0".
    """
    if pd.api.types.is_float_dtype(s.dtype):
        finite = s.dropna()
        if len(finite) and bool((np.mod(finite.to_numpy(dtype="float64"), 1) == 0).all()):
            s = s.astype("Int64")
    arr = pa.array(s.astype(STRING), type=_LARGE_STRING)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr


def _series(arr: Any, index: pd.Index) -> pd.Series:
    """Wrap an Arrow string array as a ``string[pyarrow]`` Series on ``index`` without copying."""
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr])
    if arr.type != _LARGE_STRING:
        arr = arr.cast(_LARGE_STRING)
    return pd.Series(pd.arrays.ArrowStringArray(arr), index=index, copy=False)


def _lit(text: str) -> pa.Scalar:
    return pa.scalar(text, _LARGE_STRING)


def _concat(*parts: Any, sep: str = "") -> Any:
    """Row-wise concatenation of arrays and literal strings; null where any part is null."""
    return pc.binary_join_element_wise(*(_lit(p) if isinstance(p, str) else p for p in parts), _lit(sep))


def _sub(arr: Any, pattern: str, replacement: str = "") -> Any:
    """RE2 regex replace of every match (``\\1`` refers to a group)."""
    return pc.replace_substring_regex(arr, pattern=pattern, replacement=replacement)


def _matches(arr: Any, pattern: str) -> Any:
    """RE2 search; null for null input."""
    return pc.match_substring_regex(arr, pattern=pattern)


def _true(mask: Any) -> Any:
    """A boolean mask with nulls read as False."""
    return pc.fill_null(mask, False)


def _null_where(arr: Any, mask: Any) -> Any:
    """``arr`` with nulls where ``mask`` is true (nulls in ``mask`` keep the value)."""
    return pc.if_else(_true(mask), pa.scalar(None, arr.type), arr)


def _empty_to_null(arr: Any) -> Any:
    return _null_where(arr, pc.equal(arr, ""))


def _extract(arr: Any, pattern: str) -> dict[str, Any]:
    """Named groups of an anchored RE2 pattern; a group is null where the pattern does not match or the
    group is empty (pyarrow reports both as "")."""
    struct = pc.extract_regex(arr, pattern=pattern)
    matched = pc.is_valid(struct)
    fields: dict[str, Any] = {}
    for i in range(struct.type.num_fields):
        name = struct.type.field(i).name
        value = pc.struct_field(struct, [i])
        fields[name] = _empty_to_null(pc.if_else(matched, value, pa.scalar(None, value.type)))
    return fields


def _map_distinct(arr: Any, func: Callable[[str], tuple[str | None, ...]], n_out: int) -> list[pa.Array]:
    """Apply ``func`` once per distinct non-null value and broadcast its ``n_out`` results to every row."""
    encoded = pc.dictionary_encode(arr)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    results = [func(value) for value in encoded.dictionary.to_pylist()]
    columns = []
    for i in range(n_out):
        column = pa.array([r[i] for r in results], type=_LARGE_STRING)
        columns.append(pc.take(column, encoded.indices))
    return columns


def _by_distinct(columns: list[Any], normalize: Callable[..., tuple[Any, ...]]) -> tuple[pa.Array, ...]:
    """``normalize`` (Arrow arrays in, row by row, whatever the column's other rows) of each distinct row of
    ``columns`` once, broadcast to every row. A file's companies, websites and numbers repeat (the benchmark's:
    ~18,000 of each in a 50,000-row chunk), and the regex passes over them cost per row. A column-wide shortcut
    of ``normalize`` ("any value with an umlaut?") sees the same values either way. Null is a value too."""
    codes = np.zeros(len(columns[0]), np.int64)
    for column in columns:
        encoded = pc.dictionary_encode(column, null_encoding="encode")
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        combined = codes * (len(encoded.dictionary) or 1) + encoded.indices.to_numpy()
        _, codes = np.unique(combined, return_inverse=True)  # renumbered: no overflow however many columns
    _, first = np.unique(codes, return_index=True)
    results = normalize(*(pc.take(column, first) for column in columns))
    return tuple(pc.take(result, codes) for result in results)


_OTHER_SPACES: Final = r"\t\n\x0b\f\r\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
_SPACE_RUN: Final = rf"[ {_OTHER_SPACES}]+"
# Zero-width characters and the soft hyphen: invisible in a spreadsheet, but they break equality.
_INVISIBLE: Final = r"[\x{ad}\x{200b}-\x{200d}\x{2060}\x{feff}]"
# The apostrophes that keep a cell's text from being read as something else, removed: the one Excel and
# Apollo put before numbers to keep them as text ("'+31 88 659 9111"), and the one a spreadsheet-safe CSV writer
# puts before what would start a formula, at the start of a cell or after a separator (`lib/export.py`:
# "'=SUM(A1)", "'-5", "a;'@b"). No value begins so: the apostrophe is the escape, not text, and a file
# `leads bulk export` wrote imports back as it was.
_ESCAPE_APOSTROPHE: Final = r"""^'(?: ?([+(0-9])|([ "]*[=+\-@]))"""
_ESCAPE_APOSTROPHE_AFTER: Final = r"""'([ "]*[=+\-@])"""
_SEPARATORS: Final = ",;"
_SEPARATORS_OF_LINES: Final = ",;\n"
"""Where the export's apostrophe may stand inside a value: after a separator, and in multi-line text (notes) after
a line break too."""
# What ends a line in a multi-line value: CRLF (Excel on Windows), CR (old Mac files), LF, NEL and Unicode's line
# and paragraph separators, all stored as LF.
_LINE_BREAK: Final = r"\r\n?|[\x{85}\x{2028}\x{2029}]"
_ANY_LINE_BREAK: Final = r"[\n\r\x{85}\x{2028}\x{2029}]"
_INLINE_SPACE_RUN: Final = r"[ \t\x0b\f\x{a0}\x{1680}\x{2000}-\x{200a}\x{202f}\x{205f}\x{3000}]+"
# Anything _clean would change. Most columns of most files have none of it, and one search is cheaper than the
# three replacements.
_NEEDS_CLEANING: Final = rf"{_INVISIBLE}|[{_OTHER_SPACES}]|  |^ | $|^'|[{_SEPARATORS}]'"


def _clean(arr: Any, *, keep_lines: bool = False) -> Any:
    """Arrow implementation of :func:`clean_text`; with ``keep_lines``, of :func:`clean_arrow`'s multi-line
    text: line breaks kept (as LF), spaces collapsed and trimmed within each line."""
    if not pc.any(_matches(arr, _NEEDS_CLEANING)).as_py():
        return _empty_to_null(arr)
    # a column of free text (a custom one) most often has no line break: cleaned as one line, one regex pass
    # instead of three, to the same values
    keep_lines = keep_lines and pc.any(_matches(arr, _ANY_LINE_BREAK)).as_py()
    arr = _sub(arr, _INVISIBLE)
    if keep_lines:
        arr = _sub(arr, _LINE_BREAK, "\n")
        arr = _sub(arr, _INLINE_SPACE_RUN, " ")
        arr = _sub(arr, r" ?\n ?", "\n")
        arr = pc.utf8_trim(arr, characters=" \n")
    else:
        arr = _sub(arr, _SPACE_RUN, " ")
        arr = pc.utf8_trim(arr, characters=" ")
    # most columns have no apostrophe, and most of those that have one only at the start: scanning for the text
    # costs a fraction of a regex pass
    if pc.any(pc.starts_with(arr, "'")).as_py():
        arr = _sub(arr, _ESCAPE_APOSTROPHE, r"\1\2")
    separators = _SEPARATORS_OF_LINES if keep_lines else _SEPARATORS
    if any(pc.any(pc.match_substring(arr, f"{separator}'")).as_py() for separator in separators):
        arr = _sub(arr, f"([{separators}]){_ESCAPE_APOSTROPHE_AFTER}", r"\1\2")
    return _empty_to_null(arr)


def _cleaned(s: pd.Series | None, index: pd.Index) -> Any:
    """Cleaned Arrow array of ``s`` aligned to ``index``; all-null when the column is absent."""
    if s is None:
        return pa.nulls(len(index), _LARGE_STRING)
    if not s.index.equals(index):
        s = s.reindex(index)
    return _clean(_arrow(s))


_FULL_WIDTH_ASCII: Final = r"[\x{ff01}-\x{ff5e}]"


def _narrow(arr: Any) -> Any:
    """Full-width ASCII forms (U+FF01-FF5E) as ASCII, by NFKC of the values that hold one: an input method left in
    full-width mode, as Japanese, Chinese and Korean ones are for names, types an address, a URL or a number in
    them, meaning the ASCII one (an address with a full-width at sign was refused, one with full-width letters
    stored as another address, a count or an amount refused)."""
    if pc.all(pc.string_is_ascii(arr)).as_py() is not False:
        return arr
    wide = _true(_matches(arr, _FULL_WIDTH_ASCII))
    if not pc.any(wide).as_py():
        return arr
    return pc.if_else(wide, pc.utf8_normalize(arr, form="NFKC"), arr)


# --------------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------------


def clean_text(s: pd.Series) -> pd.Series:
    """Trim, collapse whitespace runs to one space and turn empty cells into NA.

    Exports are full of invisible differences (non-breaking spaces from Excel, doubled spaces, zero-width
    characters from copy-paste) that make equal values compare unequal and look identical to the user.
    The apostrophe that Excel and Apollo put before numbers to keep them as text ("'+31 88 659 9111") is
    removed; an apostrophe before a letter ("'Ohana") is kept because it may be part of the name. The one a
    formula-safe export wrote before "=", "+", "-" or "@" ("'=SUM(A1)", "'-5", "a;'@b"), at a cell's start or
    after a separator, is removed too: the value imports back as it was exported.
    """
    return _series(_clean(_arrow(s)), s.index)


def keeps_lines(field: str | None) -> bool:
    """The one rule for line breaks in a stored lead value, whichever way it is written (an import, ``leads bulk
    set``, a CRM pull): ``field`` (a lead field, ``custom.NAME``, or None for a file's column mapped to no field,
    which goes to custom) keeps its line breaks when it holds free text written in lines: the notes
    (``fields.MULTILINE_FIELDS``) and every custom value (a CRM's Description, a file's About column), stored with
    LF. Every other value is one line, its line breaks spaces: a line break in a name, an email or a phone is a
    spreadsheet's or a form's accident, and it broke one-line outputs, searches and CSV cells."""
    return field is None or field.startswith(CUSTOM_PREFIX) or field in MULTILINE_FIELDS


def clean_value(field: str, raw: str) -> str | None:
    """One value of ``field`` cleaned as an import cleans its column (:func:`clean_arrow`, line breaks by
    :func:`keeps_lines`); None for a blank one. A value with nothing to clean but its composition (printable, which
    no line break, tab, other space or invisible character is; no doubled or outer space, no apostrophe: most names
    and titles) is only composed, with no Arrow pass (~100 us each): a CRM pull cleans every field of every
    record."""
    if raw.isprintable() and "'" not in raw and "  " not in raw and raw == raw.strip(" "):
        return unicodedata.normalize("NFC", raw) or None
    value = clean_arrow(pa.array([raw], _LARGE_STRING), pd.RangeIndex(1), keep_lines=keeps_lines(field)).iloc[0]
    return None if pd.isna(value) else str(value)


def clean_arrow(arr: pa.Array, index: pd.Index, *, keep_lines: bool = False) -> pd.Series:
    """:func:`clean_text` of a column given as an Arrow string array (as read from a file: no nulls), on
    ``index``; skips building a pandas column first. The text is composed (NFC): a name a file writes decomposed
    (NFD, as macOS and some Vietnamese and Korean input methods write it: "Hương" as u, horn, o, hook...) is
    stored as the same name typed composed, which it equals to the eye and to no comparison (a filter, a CRM, a
    spreadsheet's lookup) otherwise. Only a column with text beyond ASCII is normalized: most columns are ASCII,
    and normalizing one costs about as much as cleaning it. With ``keep_lines`` (notes: ``fields.MULTILINE_FIELDS``)
    line breaks are kept as typed, stored as LF (:func:`keeps_lines` says which columns): a note written in
    paragraphs or as a list was stored as one run-on line."""
    arr = _clean(arr, keep_lines=keep_lines)
    if not pc.all(pc.string_is_ascii(arr)).as_py():
        arr = pc.utf8_normalize(arr, form="NFC")
    return _series(arr, index)


# --------------------------------------------------------------------------------------------------------
# Emails
# --------------------------------------------------------------------------------------------------------

_ATEXT: Final = r"[a-z0-9!#$%&'*+/=?^_`{|}~\-]"
_LABEL: Final = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_ASCII_EMAIL: Final = rf"^{_ATEXT}{{1,64}}(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)+[a-z](?:[a-z0-9\-]{{0,61}}[a-z0-9])?$"
# Special-use names that email-validator refuses too; accepting them here would make the result depend
# on whether the address happened to be ASCII.
_SPECIAL_USE_TLD: Final = r"\.(?:arpa|invalid|local|localhost|onion|test)$"


@lru_cache(maxsize=1 << 14)
def _validate_email(value: str) -> tuple[str | None]:
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return (None,)
    return (result.normalized.lower(),)


def normalize_emails(s: pd.Series) -> Normalized:
    """Lower-cased, syntactically valid email addresses.

    ASCII addresses (nearly all of them) are checked with one RE2 pattern over the column, which accepts
    what ``email_validator`` accepts for plain dot-atom addresses. Internationalized addresses (Unicode
    local part, IDN domain) and punycode domains go to ``email_validator`` once per distinct value, so
    "user@Bücher.de" and "user@xn--bcher-kva.de" both become "user@bücher.de". Lower-casing the local part
    is technically lossy but matches how every mail provider in practice treats addresses, and it is what
    makes duplicate detection work. A cell with several addresses is reported, not split.
    """
    arr = pc.utf8_lower(_narrow(_clean(_arrow(s))))
    arr = _sub(arr, r"^mailto: ?", "")
    arr = _sub(arr, r"^[^<>]*<([^<>]+)>$", r"\1")  # "Jane Doe <jane@example.com>"
    arr = _empty_to_null(arr)

    needs_validator = _true(pc.or_(pc.invert(pc.string_is_ascii(arr)), _matches(arr, r"(?:^|[@.])xn--")))
    ascii_ok = _true(
        pc.and_(
            pc.and_(_matches(arr, _ASCII_EMAIL), pc.invert(_matches(arr, _SPECIAL_USE_TLD))),
            pc.less_equal(pc.utf8_length(arr), 254),
        )
    )
    values = _null_where(arr, pc.and_(pc.invert(needs_validator), pc.invert(ascii_ok)))
    if _true(pc.any(needs_validator)).as_py():
        (validated,) = _map_distinct(_null_where(arr, pc.invert(needs_validator)), _validate_email, 1)
        values = pc.if_else(needs_validator, validated, values)
    problems = pc.if_else(pc.and_(pc.is_valid(arr), pc.is_null(values)), _lit(EMAIL_PROBLEM), _NULL_STRING)
    return Normalized(_series(values, s.index), _series(problems, s.index))


def email_domains(s: pd.Series) -> pd.Series:
    """The part of each value after its last @ (null without one), as stored beside a sealed address: one RE2
    pass over the column, where pandas' ``str.extract`` ran a Python match per row (~8% of sealing a chunk)."""
    return _series(pc.struct_field(pc.extract_regex(_arrow(s), pattern=r"@(?P<domain>[^@]*)$"), [0]), s.index)


# --------------------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------------------

# phonenumbers compiles its metadata's patterns through the re module's cache, which holds 512: numbers from
# many countries evict each other's patterns and are compiled again and again. Its own unbounded cache parses
# a chunk of 12k distinct numbers from ~200 countries 30% faster (0.95 s -> 0.65 s).
phonenumbers.enable_pattern_cache()

_PHONE_SPLIT: Final = r"(?i)^(?P<main>.*?)(?:[ ,;]*(?:ext(?:ension)?|x|#)[ .:=]*(?P<ext>[0-9]{1,7}))?$"
_PHONE_REGIONS: Final = pa.array(sorted(phonenumbers.SUPPORTED_REGIONS), type=_LARGE_STRING)
_KEY_SEP: Final = "\x1f"


def _whole_number(parsed: phonenumbers.PhoneNumber) -> bool:
    """Whether the number has a length a full number of its country has: a number only possible locally (without
    its area code: "555-0100" read as +15550100) or cut short ("008-690-4698" read as +86904698) is no E.164."""
    return phonenumbers.is_possible_number_with_reason(parsed) == phonenumbers.ValidationResult.IS_POSSIBLE


def _parse_phone(number: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None


@lru_cache(maxsize=1 << 16)
def _phone_e164(number: str, region: str | None, default_region: str) -> tuple[str | None, str | None]:
    """E.164 form and library-detected extension of one number, or (None, None).

    ``is_valid_number`` is the expensive call, so it is only made where its answer can change the result:
    with a single candidate parse (international numbers, or the row's country is the default) a valid
    number is always a possible one, and "possible" is all the rule below needs.
    """
    if number.startswith("+") or region is None or region == default_region:
        parsed = _parse_phone(number, None if number.startswith("+") else default_region)
        candidates = [parsed] if parsed is not None else []
    else:
        candidates = []
        for candidate_region in (region, default_region):
            parsed = _parse_phone(number, candidate_region)
            if parsed is None:
                continue
            if is_first_choice(parsed):
                return _phone_result(parsed)
            candidates.append(parsed)
    for parsed in candidates:
        if is_kept_number(parsed):
            return _phone_result(parsed)
    return (None, None)


def is_first_choice(parsed: phonenumbers.PhoneNumber) -> bool:
    """Whether the import keeps this reading of a number before any other: a valid number with a full number's
    length. Only a number that is none in the row's country is read in the default region (search reads a filter's
    number the same way, to know in which leads' countries it can have been read so)."""
    return _whole_number(parsed) and phonenumbers.is_valid_number(parsed)


def is_kept_number(parsed: phonenumbers.PhoneNumber) -> bool:
    """Whether the import keeps a reading of a number: one with a full number's length, or a valid one (search
    reads a filter's number the same way, so that it finds what the import stored)."""
    return _whole_number(parsed) or phonenumbers.is_valid_number(parsed)


def stored_e164(parsed: phonenumbers.PhoneNumber) -> str:
    """The E.164 form the import stores for a reading of a number: the one that reads back as itself. A leading
    zero that a region keeps but its country's main region reads as a trunk prefix made the form depend on how the
    number was written: "027-060-5731" in Jersey is +440270605731, which reads back as +44270605731, so an
    exported lead imported again changed its number (and its blind index, so the two spellings never matched as
    duplicates)."""
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if parsed.italian_leading_zero and (again := _parse_phone(e164, None)) is not None:
        e164 = phonenumbers.format_number(again, phonenumbers.PhoneNumberFormat.E164)
    return e164


def _phone_result(parsed: phonenumbers.PhoneNumber) -> tuple[str | None, str | None]:
    return (stored_e164(parsed), parsed.extension or None)


def normalize_phones(s: pd.Series, countries: pd.Series | None, default_region: str = "US") -> NormalizedPhones:
    """Phone numbers in E.164, parsed with the row's country and falling back to ``default_region``.

    ``countries`` holds ISO 3166-1 alpha-2 codes (the ``values`` of :func:`country_codes`); anything that is
    not a phonenumbers region counts as missing. A number is parsed with the row's country first and kept
    if valid there; otherwise with ``default_region`` if valid there; otherwise the first parse that has a
    full number's length (not one possible only locally, without its area code) is kept, so a plausible
    number from a new number range is not thrown away (this also keeps numbers with an unassigned area code
    such as "043-797-5229" -> "+10437975229"). Numbers
    starting with "+" or "00" are international and ignore the region. Extensions ("x718", "ext. 12",
    "#12") are split off first, both because E.164 cannot hold them and so that "415-555-0123 x1" and
    "415-555-0123 x2" share one parse.

    Speed: a 10-digit North American number ("(415) 555-0123", "+1 415 555 0123") with a North American
    row country and default needs no parsing at all: phonenumbers would accept it as "possible" whatever
    its area code, so it is formatted directly in Arrow. Everything else is parsed behind a bounded cache shared
    across chunks. All of it is done once per distinct (number, country) pair of the column.
    """
    index = s.index
    region_default = default_region.upper()
    if region_default not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default_region {default_region!r} is not a region known to phonenumbers")
    columns = [_arrow(s)]
    if countries is not None:
        columns.append(_arrow(countries if countries.index.equals(index) else countries.reindex(index)))
    e164, extension, problems = _by_distinct(
        columns, lambda numbers, regions=None: _phones(numbers, regions, region_default)
    )
    return NormalizedPhones(_series(e164, index), _series(extension, index), _series(problems, index))


def _phones(numbers: Any, countries: Any | None, region_default: str) -> tuple[Any, Any, Any]:
    """:func:`normalize_phones` of Arrow arrays (the countries as given, on the same rows): E.164 numbers,
    extensions, problems."""
    cleaned = _clean(numbers)
    present = pc.is_valid(cleaned)
    parts = _extract(cleaned, _PHONE_SPLIT)
    main = _empty_to_null(pc.utf8_trim(parts["main"], characters=" ,;"))
    main = _sub(main, r"^00 ?", "+")
    extension = parts["ext"]
    international = _true(pc.starts_with(main, "+"))

    if countries is None:
        region = pa.nulls(len(numbers), _LARGE_STRING)
    else:
        region = pc.utf8_upper(_clean(countries))
        region = _null_where(region, pc.invert(pc.is_in(region, value_set=_PHONE_REGIONS)))
    region_or_default = pc.fill_null(region, region_default)

    e164 = pa.nulls(len(numbers), _LARGE_STRING)
    slow = pc.is_valid(main)
    if phonenumbers.country_code_for_region(region_default) == 1:
        nanp_regions = pa.array(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1], type=_LARGE_STRING)
        digits = _sub(main, r"[^0-9]", "")
        plain = _true(_matches(main, r"^\+?[0-9 ().\-/]+$"))
        national_nanp = pc.and_(
            pc.and_(pc.invert(international), _true(_matches(digits, r"^1?[2-9][0-9]{9}$"))),
            pc.is_in(region_or_default, value_set=nanp_regions),
        )
        international_nanp = pc.and_(international, _true(_matches(digits, r"^1[2-9][0-9]{9}$")))
        fast = pc.and_(plain, pc.or_(national_nanp, international_nanp))
        national_digits = pc.utf8_slice_codeunits(digits, -10)
        e164 = pc.if_else(fast, _concat("+1", national_digits), e164)
        slow = pc.and_(slow, pc.invert(fast))

    # A digit, decimals, "E", a power: Excel's General cell of a long number, its last digits lost. Never a phone,
    # though its digits can make one ("6.51234e11" in Singapore: +65 6512 3411).
    scientific = _true(_matches(main, r"^[0-9]([.,][0-9]+)?[eE]\+?[0-9]{1,2}$"))
    slow = pc.and_(slow, pc.invert(scientific))
    if _true(pc.any(slow)).as_py():
        # International numbers ignore the region, so they share one key whatever the row's country.
        key_region = pc.if_else(international, _lit(""), pc.fill_null(region, ""))
        key = _null_where(_concat(key_region, main, sep=_KEY_SEP), pc.invert(slow))

        def parse(key_value: str) -> tuple[str | None, str | None]:
            key_region_value, _, number = key_value.partition(_KEY_SEP)
            return _phone_e164(number, key_region_value or None, region_default)

        parsed_e164, parsed_extension = _map_distinct(key, parse, 2)
        e164 = pc.if_else(slow, parsed_e164, e164)
        extension = pc.coalesce(extension, parsed_extension)

    failed = pc.and_(present, pc.is_null(e164))
    problems = pc.if_else(
        failed,
        _concat(PHONE_PROBLEM, region_or_default),
        _NULL_STRING,
    )
    problems = pc.if_else(scientific, _lit(PHONE_SCIENTIFIC_PROBLEM), problems)
    extension = _null_where(extension, pc.is_null(e164))
    return e164, extension, problems


def phone_extensions(s: pd.Series, e164: pd.Series | None) -> Normalized:
    """Extensions given in a column of their own, as ``leads bulk export`` writes ``phone_ext`` beside ``phone``
    ("77", "x77", "ext. 77"), for the row's phone numbers ``e164`` (None: the file has no phone column). An
    extension that is not digits, or beside no phone, is a problem: an extension is nothing without its number."""
    digits = s.str.extract(r"(?i)^(?:ext(?:ension)?|x|#)?[ .:=]*([0-9]{1,7})$", expand=False).astype(STRING)
    digits = digits.where(pd.Series(False, index=s.index) if e164 is None else e164.notna())
    problems = pd.Series(pd.NA, index=s.index, dtype=STRING).mask(s.notna() & digits.isna(), EXTENSION_PROBLEM)
    return Normalized(digits, problems)


# --------------------------------------------------------------------------------------------------------
# Websites and LinkedIn
# --------------------------------------------------------------------------------------------------------

_HOST_CHAR: Final = r"[a-z0-9\x{80}-\x{10ffff}]"
_HOST_LABEL: Final = rf"{_HOST_CHAR}(?:[a-z0-9\x{{80}}-\x{{10ffff}}\-]{{0,61}}{_HOST_CHAR})?"
_HOSTNAME: Final = rf"^(?:{_HOST_LABEL}\.)+(?:[a-z\x{{80}}-\x{{10ffff}}]{{2,63}}|xn--[a-z0-9\-]{{1,59}})$"
_URL: Final = (
    r"^(?:[a-z][a-z0-9+.\-]*://|https?:/{0,3}|//)?"  # scheme, tolerating "http:/x.com"
    r"(?:[^@/?#]*@)?"  # credentials
    r"(?P<host>[^:/?#@ \\]+)"
    r"(?::[0-9]*)?"  # port
    r"(?:[/?#\\].*)?$"  # path, query, fragment
)


@lru_cache(maxsize=1 << 12)
def _decode_punycode(host: str) -> tuple[str | None]:
    """Show "xn--mnchen-3ya.de" as "münchen.de" so both spellings of a domain give the same key. A label that is
    no internationalized one is left as written: "xn--abc-" decodes to plain "abc" (it was stored as another
    domain, abc.com) and "xn--a" to a control character (stored as a domain no one can type)."""
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label[4:].encode("ascii").decode("punycode")
            except UnicodeError:
                return (host,)
            if label.isascii() or any(unicodedata.category(c)[0] == "C" for c in label):
                return (host,)
        labels.append(label)
    return (unicodedata.normalize("NFC", ".".join(labels)).lower(),)


def website_to_domain(s: pd.Series) -> Normalized:
    """The host name of a website: "http://www.Stephenson.com/about?x=1" -> "stephenson.com".

    Scheme, credentials, port, path, query and a leading "www." are dropped because users write the same
    site in all these ways and the domain is what identifies a company. Internationalized domains stay in
    Unicode ("münchen.de"; punycode is decoded), lower-cased and NFC-normalized, as users type them. A
    value without a dotted hostname (a company name, "n/a", an IP address) is a problem, not a domain.
    Subdomains other than "www" are kept ("shop.example.co.uk"): finding the registrable part would need
    the public suffix list.
    """
    values, problems = _by_distinct([_arrow(s)], _domains)
    return Normalized(_series(values, s.index), _series(problems, s.index))


def _domains(given: Any) -> tuple[Any, Any]:
    """:func:`website_to_domain` of an Arrow array: the domains and the problems."""
    arr = pc.utf8_normalize(pc.utf8_lower(_narrow(_clean(given))), form="NFC")
    # IDNA treats the ideographic and full-width full stops as label separators.
    arr = _sub(arr, r"[\x{3002}\x{ff0e}\x{ff61}]", ".")
    host = _extract(arr, _URL)["host"]
    host = _sub(host, r"\.+$", "")
    host = _sub(host, r"^www[0-9]*\.([^.]+\..+)$", r"\1")
    has_punycode = _true(_matches(host, r"(?:^|\.)xn--"))
    if _true(pc.any(has_punycode)).as_py():
        (decoded,) = _map_distinct(_null_where(host, pc.invert(has_punycode)), _decode_punycode, 1)
        host = pc.if_else(has_punycode, decoded, host)
    ok = _true(pc.and_(_matches(host, _HOSTNAME), pc.less_equal(pc.utf8_length(host), 253)))
    values = _null_where(host, pc.invert(ok))
    problems = pc.if_else(pc.and_(pc.is_valid(arr), pc.invert(ok)), _lit(WEBSITE_PROBLEM), _NULL_STRING)
    return values, problems


_LINKEDIN: Final = (
    r"^(?:https?://)?(?:[a-z0-9\-]+\.)?linkedin\.com/(?:mwlite/)?(?P<kind>in|company)/(?P<slug>[^/?#\s]+)"
    r"(?:[/?#].*)?$"
)
LINKEDIN_MEMBER_ID: Final = r"^AC[ow]AA[0-9A-Za-z_-]+$"
"""A profile slug that is a member id ("ACoAAB...", the URN LinkedIn's API and Sales Navigator give instead of the
vanity name): base64-like and case-sensitive, so it keeps its case (lower-cased, it opens no profile and two members
could meet in one)."""


def _lower_slug(slug: str) -> tuple[str | None]:
    """A slug lower-cased as Python lower-cases Unicode (a word's final capital sigma to the final small one, "İ"
    to "i" and a combining dot: Arrow's lower-casing maps a letter at a time, to the medial sigma and a plain
    "i"), a percent-encoded one as the Unicode one it stands for
    ("j%C3%BCrgen" -> "jürgen"), so that a profile is one URL either way and the database writes it the same
    (``lower(... COLLATE pg_unicode_fast)``, sql/043). An encoded slug is kept as written (lower-cased) when it
    does not decode to UTF-8 or decodes to a space, a URL delimiter or a control character (no slug has one; a
    NUL, "%00", cannot even be stored: the chunk's COPY would fail half-way through the import)."""
    if "%" not in slug:
        return (slug.lower(),)
    try:
        decoded = urllib.parse.unquote(slug, errors="strict")
    except UnicodeDecodeError:
        return (slug.lower(),)
    if re.search(r"[\s/?#%]", decoded) or any(unicodedata.category(c)[0] == "C" for c in decoded):
        return (slug.lower(),)
    return (unicodedata.normalize("NFC", decoded).lower(),)


def linkedin_urls(s: pd.Series) -> Normalized:
    """Canonical LinkedIn URLs: "https://www.linkedin.com/in/<slug>" or ".../company/<slug>".

    Exports write the same profile with or without scheme, with country subdomains ("uk.linkedin.com"),
    trailing slashes and tracking queries; one canonical form makes profiles comparable across sources.
    Vanity slugs are case-insensitive on LinkedIn, so they are lower-cased (a member id, ``LINKEDIN_MEMBER_ID``,
    is not and keeps its case), and a slug with accents is kept in Unicode whether the export percent-encoded it
    ("j%C3%BCrgen-m%C3%BCller", as LinkedIn's own export does) or not.
    Anything other than a profile or a company page (posts, "/pub/" URLs, search links) is a problem.
    """
    arr = pc.utf8_normalize(_clean(_arrow(s)), form="NFC")
    parts = _extract(arr, "(?i)" + _LINKEDIN)
    slug = parts["slug"]
    # ASCII ones lower-cased a column at a time; encoded or Unicode ones one distinct slug at a time
    special = _true(pc.or_(pc.match_substring(slug, "%"), pc.invert(pc.string_is_ascii(slug))))
    lowered = pc.utf8_lower(slug)
    if _true(pc.any(special)).as_py():
        (decoded,) = _map_distinct(_null_where(slug, pc.invert(special)), _lower_slug, 1)
        lowered = pc.if_else(special, decoded, lowered)
    kind = pc.utf8_lower(parts["kind"])
    member = _true(pc.and_(pc.equal(kind, "in"), _matches(slug, LINKEDIN_MEMBER_ID)))
    values = _concat("https://www.linkedin.com/", kind, "/", pc.if_else(member, slug, lowered))
    problems = pc.if_else(pc.and_(pc.is_valid(arr), pc.is_null(values)), _lit(LINKEDIN_PROBLEM), _NULL_STRING)
    return Normalized(_series(values, s.index), _series(problems, s.index))


# --------------------------------------------------------------------------------------------------------
# Countries
# --------------------------------------------------------------------------------------------------------


def country_codes(s: pd.Series) -> Normalized:
    """ISO 3166-1 alpha-2 codes from country names or codes ("United States of America", "usa" -> "US").

    pycountry's alpha-2, alpha-3, name, official and common names are matched ignoring case, accents and
    punctuation, plus an alias table for the forms exports actually use (UK, England, South Korea,
    Russia, Ivory Coast, Swaziland...). Numeric codes are not accepted: a number in a country column is far
    more often a misplaced postal code than an ISO numeric code. "Netherlands Antilles" and other
    dissolved countries are problems, not a guessed successor; Kosovo maps to the user-assigned "XK".
    """
    (values, problems) = _map_distinct(_clean(_arrow(s)), country_code, 2)
    return Normalized(_series(values, s.index), _series(problems, s.index))


# --------------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------------


@cache
def _name_stopwords() -> pa.Array:
    """Every word nameparser treats specially (titles, suffixes, particles, conjunctions...), lower-case."""
    words: set[str] = set()
    for attribute in (
        "titles",
        "first_name_titles",
        "suffix_acronyms",
        "suffix_acronyms_ambiguous",
        "suffix_not_acronyms",
        "prefixes",
        "non_first_name_prefixes",
        "conjunctions",
        "bound_first_names",
    ):
        words |= {str(word).lower() for word in getattr(NAME_CONSTANTS, attribute, ())}
    return pa.array(sorted(words), type=_LARGE_STRING)


@lru_cache(maxsize=1 << 16)
def _split_name(full: str) -> tuple[str | None, str | None]:
    """(first, last) of a full name; middle names go with the first name, particles with the last."""
    name = HumanName(full)
    first = " ".join(part for part in (name.first, name.middle) if part)
    return (first or None, name.last or None)


# Countries whose names in Latin letters are written family name first ("Nagy Zoltán": family name Nagy).
# Chinese, Japanese, Korean and Vietnamese names in Latin letters come in either order in exports, so they are
# not here: only a name in their own script says its order (FAMILY_NAME_FIRST).
FAMILY_FIRST_COUNTRIES: Final[frozenset[str]] = frozenset({"HU"})

# A Chinese or Korean full name is written family name first without a space (王伟, 김민준), the family name one
# character but for a few compound ones (HAN_COMPOUND_FAMILY_NAMES and those below). A Han name of two or three
# characters (four with a compound family name) is split so, the length of nearly every Chinese name; a longer one is
# most likely Japanese (山田花子), whose family name has one to three characters and cannot be told without a
# dictionary. Kana or 々 (山田はなこ, 佐々木) mark a name Japanese: these patterns do not match it.
_HAN: Final = r"\x{3400}-\x{4dbf}\x{4e00}-\x{9fff}\x{20000}-\x{2fa1f}"
_HANGUL: Final = r"\x{ac00}-\x{d7af}"
HANGUL_COMPOUND_FAMILY_NAMES: Final[tuple[str, ...]] = ("남궁", "제갈", "선우", "독고", "사공")
HANGUL_COMPOUND_FAMILY_NAMES_BEFORE_TWO: Final[tuple[str, ...]] = ("황보", "서문")
"""Compound Korean family names whose first syllable is a common family name of its own, and their second one a
common first syllable of given names: 황보람 is Hwang Boram, 황보민수 Hwangbo Minsu (a given name of two
syllables, as most are, after them)."""
_FAMILY_FIRST_PATTERNS: Final[tuple[tuple[str, str], ...]] = (
    ("Han", f"^(?P<last>{'|'.join(HAN_COMPOUND_FAMILY_NAMES)}|[{_HAN}])(?P<first>[{_HAN}]{{1,2}})$"),
    ("Hangul", f"^(?P<last>{'|'.join(HANGUL_COMPOUND_FAMILY_NAMES_BEFORE_TWO)})(?P<first>[{_HANGUL}]{{2}})$"),
    ("Hangul", f"^(?P<last>{'|'.join(HANGUL_COMPOUND_FAMILY_NAMES)}|[{_HANGUL}])(?P<first>[{_HANGUL}]{{1,3}})$"),
)
"""(script, pattern) of the unspaced family-first names, tried in turn: the family name, then the given name."""
UNSPLIT_HAN_COUNTRIES: Final[frozenset[str]] = frozenset({"JP"})
"""Where a name in Han characters is Japanese: left whole (in the last name) rather than split as a Chinese one."""


@lru_cache(maxsize=1 << 14)
def _split_family_first(full: str) -> tuple[str | None, str | None]:
    """(first, last) of a full name written family name first: the first word is the family name, the rest the
    given names ("Nagy Zoltán Péter" -> "Zoltán Péter" / "Nagy"); titles and suffixes are dropped as in
    :func:`_split_name`, and a comma ("Nagy, Zoltán") marks the family name as it does there."""
    if "," in full:
        return _split_name(full)
    name = HumanName(full)
    given = " ".join(part for part in (name.middle, name.last) if part)
    return (given or None, name.first or None) if given else (name.first or None, None)


def _join_names(first: Any, last: Any) -> Any:
    both = _concat(first, last, sep=" ")
    return pc.coalesce(both, first, last)


def _full_names(first: Any, last: Any) -> Any:
    """First and last names joined as :func:`fields.full_name` joins one (a Chinese, Japanese or Korean name family
    name first, without a space)."""
    family_first = _true(_matches(_concat(first, last), f"^[{FAMILY_NAME_FIRST}]+$"))
    return pc.if_else(family_first, _concat(last, first), _join_names(first, last))


def complete_names(
    first: pd.Series | None,
    last: pd.Series | None,
    full: pd.Series | None,
    index: pd.Index,
    country: pd.Series | None = None,
) -> Names:
    """Fill in first, last and full name from whichever of them the file has.

    Where the full name is present and the first or last name is missing, the full name is split with
    nameparser: "Ludwig van Beethoven" -> "Ludwig" / "van Beethoven" (particles stay with the last name, so
    sorting and greeting work), "Beethoven, Ludwig" is understood, titles ("Dr.") and suffixes ("Jr.",
    "PhD") are dropped, and middle names are kept with the first name ("María José García-López" ->
    "María José" / "García-López"): nothing the user typed is lost from first + last, and compound given
    names, common in Spanish and Portuguese, stay whole. A single word is a first name. In a row whose
    ``country`` (an alpha-2 code) writes names family name first the first word is the family name (Hungary:
    "Nagy Zoltán" -> "Zoltán" / "Nagy"). A Chinese or Korean name written without a space is split family
    name first: "王伟" -> "伟" / "王", "欧阳娜娜" -> "娜娜" / "欧阳", "김민준" -> "민준" / "김" (see
    ``_FAMILY_FIRST_PATTERNS``; first and last name, full name and search text are then those of the name
    given in two columns). A Japanese name cannot be split without a dictionary: one with kana, of four or
    more Han characters or in a row of Japan is left whole in the last name ("山田花子"; Salesforce requires
    a last name, and the search finds it as typed). Only the missing side is filled; given values are never
    overwritten. Where the full name is missing it is first + " " + last (or whichever exists), a Chinese,
    Japanese or Korean name last + first ("王" and "伟": "王伟", as
    :func:`fields.full_name`). Diacritics and case are kept as written.

    Speed: nameparser manages ~11k names/s, so plain two-word Latin-script names with no word nameparser
    treats specially are split in Arrow (the same answer nameparser gives); the rest is parsed once per
    distinct value.
    """
    first_arr = _cleaned(first, index)
    last_arr = _cleaned(last, index)
    full_arr = _cleaned(full, index)

    need_split = pc.and_(pc.is_valid(full_arr), pc.or_(pc.is_null(first_arr), pc.is_null(last_arr)))
    to_split = _null_where(full_arr, pc.invert(need_split))
    parts = _extract(to_split, r"^(?P<first>\p{Latin}+) (?P<last>\p{Latin}+)$")
    stop = _name_stopwords()
    simple = pc.and_(
        pc.invert(_true(pc.is_in(pc.utf8_lower(parts["first"]), value_set=stop))),
        pc.invert(_true(pc.is_in(pc.utf8_lower(parts["last"]), value_set=stop))),
    )
    simple = _true(pc.and_(simple, pc.is_valid(parts["first"])))
    countries = _cleaned(country, index)
    family_first = _true(pc.is_in(countries, value_set=pa.array(sorted(FAMILY_FIRST_COUNTRIES), _LARGE_STRING)))
    split_first = _null_where(pc.if_else(family_first, parts["last"], parts["first"]), pc.invert(simple))
    split_last = _null_where(pc.if_else(family_first, parts["first"], parts["last"]), pc.invert(simple))
    unsplit_han = pc.is_in(countries, value_set=pa.array(sorted(UNSPLIT_HAN_COUNTRIES), _LARGE_STRING))
    cjk = _null_where(to_split, pc.or_(simple, pc.string_is_ascii(to_split)))
    for script, pattern in _FAMILY_FIRST_PATTERNS if _true(pc.any(pc.is_valid(cjk))).as_py() else ():
        written = _extract(_null_where(cjk, unsplit_han) if script == "Han" else cjk, pattern)
        split_first = pc.coalesce(split_first, written["first"])
        split_last = pc.coalesce(split_last, written["last"])
    hard = _null_where(to_split, pc.is_valid(split_last))
    for splitter, rows in ((_split_name, pc.invert(family_first)), (_split_family_first, family_first)):
        parsed = _null_where(hard, pc.invert(rows))
        if _true(pc.any(pc.is_valid(parsed))).as_py():
            parsed_first, parsed_last = _map_distinct(parsed, splitter, 2)
            split_first = pc.coalesce(split_first, parsed_first)
            split_last = pc.coalesce(split_last, parsed_last)

    first_out = pc.coalesce(first_arr, split_first)
    last_out = pc.coalesce(last_arr, split_last)
    full_out = pc.coalesce(full_arr, _full_names(first_out, last_out))
    return Names(_series(first_out, index), _series(last_out, index), _series(full_out, index))


# --------------------------------------------------------------------------------------------------------
# Matching keys
# --------------------------------------------------------------------------------------------------------

# Letters that NFKD does not decompose but that users routinely write without their accent.
_LETTER_FOLDS: Final[tuple[tuple[str, str], ...]] = (
    ("ß", "ss"),
    ("æ", "ae"),
    ("œ", "oe"),
    ("ø", "o"),
    ("ł", "l"),
    ("đ", "d"),
    ("ð", "d"),
    ("þ", "th"),
    ("\u0131", "i"),  # dotless i
)


def _fold(arr: Any) -> Any:
    """Case- and accent-insensitive form for matching keys.

    NFKD turns full-width and half-width forms into plain ones and "㈱" into "(株)"; only the combining
    marks of Latin, Greek and Cyrillic accents are dropped, so Japanese voicing marks survive the final
    NFC ("ガ" stays "ガ", it is a different sound from "カ").
    """
    arr = _sub(arr, r"[™®©℠]", "")
    arr = pc.utf8_normalize(arr, form="NFKD")
    arr = _sub(arr, r"[\x{300}-\x{36f}\x{1ab0}-\x{1aff}\x{1dc0}-\x{1dff}\x{20d0}-\x{20ff}\x{fe20}-\x{fe2f}]")
    arr = pc.utf8_lower(arr)
    for letter, replacement in _LETTER_FOLDS:
        arr = pc.replace_substring(arr, pattern=letter, replacement=replacement)
    return pc.utf8_normalize(arr, form="NFC")


_JP_LEGAL: Final = r"(?:株式会社|有限会社|合同会社|合資会社|合名会社|\(株\)|\(有\)|\(同\))"
_LEGAL_SUFFIXES: Final[tuple[str, ...]] = (
    "and co",
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "plc",
    "gmbh",
    "ag",
    "kg",
    "kgaa",
    "se",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "sl",
    "ltda",
    "bv",
    "nv",
    "oy",
    "oyj",
    "ab",
    "as",
    "aps",
    "kk",
    "co",
    "corp",
    "corporation",
    "company",
    "pty",
    "pte",
    "llp",
    "lp",
)
_LEGAL_SUFFIX_RUN: Final = rf"(?: (?:{'|'.join(_LEGAL_SUFFIXES)}))+$"


_SLASHED_FORMS: Final = ((r"\ba/s\b", "as"), (r"\bs/a\b", "sa"))
"""The legal forms written with a slash, as the legal forms dropped from the key: Danish and Norwegian A/S,
Brazilian S/A ("Ørsted A/S" was "orsted a s", not Ørsted's "orsted"); stored keys of an earlier version are
recomputed by sql/109."""


_UMLAUTS: Final[tuple[tuple[str, str], ...]] = (("ä", "ae"), ("ö", "oe"), ("ü", "ue"))
"""German umlauts as German spells them without (ß is :data:`_LETTER_FOLDS`' "ss"): a company's name is written
"Müller" or "Mueller", the same company."""


def _company_key(arr: Any) -> Any:
    if _true(pc.any(_matches(arr, r"[äöüÄÖÜ\x{308}]"))).as_py():
        arr = pc.utf8_normalize(pc.utf8_lower(arr), form="NFC")
        for letter, spelled in _UMLAUTS:
            arr = pc.replace_substring(arr, pattern=letter, replacement=spelled)
    arr = _fold(arr)
    arr = _sub(arr, rf"^{_JP_LEGAL} ?| ?{_JP_LEGAL}$", "")
    arr = pc.replace_substring(arr, pattern="&", replacement=" and ")
    arr = _sub(arr, r"['\x{2019}.]", "")  # "l.l.c." -> "llc", "McDonald's" -> "mcdonalds"
    for slashed, form in _SLASHED_FORMS:
        arr = _sub(arr, slashed, form)
    arr = _sub(arr, r"[^\p{L}\p{N}\p{M}]+", " ")
    arr = pc.utf8_trim(arr, characters=" ")
    arr = _sub(arr, r"^the ", "")
    arr = _sub(arr, _LEGAL_SUFFIX_RUN, "")
    return _empty_to_null(arr)


def company_key(s: pd.Series) -> pd.Series:
    """A key under which spellings of one company compare equal: "Acme, Inc." and "ACME Inc" -> "acme".

    German umlauts are spelled as without them ("Müller" and "Mueller": "mueller"; stored keys of an earlier
    version are recomputed by sql/044); case, other accents, punctuation, a leading "The" and trailing legal
    forms (Inc, LLC, Ltd, GmbH, S.A., S/A, A/S, B.V., Pty Ltd, & Co. KG...: sql/109 recomputed the keys stored
    before A/S and S/A were; 株式会社, full-width (株), ㈱ before or after a Japanese name) are dropped because
    exports disagree on them for the same company. Words that carry meaning ("Group", "Holdings") are kept:
    "Rasmussen Group" and "Rasmussen" may well be different companies. A name that is only a legal form keeps it.
    The display name is not touched; this is only a key.
    """
    (keys,) = _by_distinct([_arrow(s)], lambda given: (_company_key(_clean(given)),))
    return _series(keys, s.index)


def name_key(first: pd.Series, last: pd.Series, company_key: pd.Series) -> pd.Series:
    """The key "first last|companykey", case- and accent-insensitive, identifying a person at a company.

    It finds the same person imported twice without fuzzy matching; it is NA unless a first or last name
    and a company key are present, since a name alone is not an identity. A Chinese, Japanese or Korean name is
    keyed as its full name is written (:func:`_full_names`, "山田花子|toyota"): the name in two columns (花子 and
    山田) and the one a full-name column keeps whole in the last name (a Japanese one, which is not split) are one
    person.
    """
    index = company_key.index
    person = _full_names(_cleaned(first, index), _cleaned(last, index))
    person = _empty_to_null(pc.utf8_trim(_fold(person), characters=" "))
    company = _empty_to_null(_arrow(company_key))
    return _series(_concat(person, company, sep="|"), index)


# --------------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------------

_MAGNITUDES: Final[dict[str, int]] = {
    "": 0,
    "k": 3,
    "thousand": 3,
    "m": 6,
    "mm": 6,
    "mn": 6,
    "mio": 6,
    "mil": 6,
    "million": 6,
    "millions": 6,
    "b": 9,
    "bn": 9,
    "bil": 9,
    "billion": 9,
    "billions": 9,
    "md": 9,
    "mrd": 9,
    "milliard": 9,
    "milliarden": 9,
    "t": 12,
    "tn": 12,
    "trillion": 12,
}
_CURRENCY_CODES: Final = "usd|eur|gbp|chf|jpy|cad|aud|inr|sek|nok|dkk"
_NUMBER: Final = (
    r"^(?P<sign>-?)(?P<num>[0-9]+(?:[.,][0-9]+)*|[.,][0-9]+)(?P<suffix>[a-z]*)\.?"
    r"(?:(?:-|\x{2013}|\x{2014}|to)[0-9][0-9.,]*(?P<suffix2>[a-z]*)\.?)?$"
)


def _parse_numbers(s: pd.Series, *, counts: bool = False) -> tuple[Any, Any]:
    """(float64 values, present mask): US and European forms, magnitude suffixes, ranges -> lower bound.

    A separator followed by exactly three digits groups thousands ("1,200", "1.200.000", "1.200,50");
    a single "." is a decimal point ("1.5", "1.20"), a single "," followed by other than three digits is a
    decimal comma ("1,5 Mio"). Values are assembled as "<digits>e<exponent>" so that "3.2B" is exactly
    3200000000, not 3.2 * 1e9 with float error.
    A single "." before exactly three digits groups thousands too, where nothing else can be meant: for
    ``counts`` (whole numbers) always, as no count has three decimals and a German file's "1.000" employees
    is a thousand, not one; for amounts when no magnitude follows and the first group is not 0, as no amount of
    money is written with three decimals: "€ 2.000" is 2000 (it was 2.0), while "$2.125B" stays 2.125 billion
    and "0.125" stays 0.125.
    """
    arr = _narrow(_clean(_arrow(s)))
    present = pc.is_valid(arr)
    arr = pc.utf8_lower(arr)
    arr = _sub(arr, r"[ '\x{2019}_]", "")
    arr = _sub(arr, rf"^(?:{_CURRENCY_CODES})|(?:{_CURRENCY_CODES})$", "")
    arr = _sub(arr, r"[$€£¥₹]|^\+|\+$", "")
    parts = _extract(arr, _NUMBER)
    num = parts["num"]
    suffix = pc.fill_null(pc.coalesce(parts["suffix"], parts["suffix2"]), "")

    # no thousands group starts with 0: "0,500" is a half, a count "0.500" no whole number
    us_grouped = _true(_matches(num, r"^[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]+)?$"))
    eu_grouped = _matches(num, r"^[1-9][0-9]{0,2}(?:\.[0-9]{3})+,[0-9]+$|^[1-9][0-9]{0,2}(?:\.[0-9]{3}){2,}$")
    one_dot_group = _matches(num, r"^[1-9][0-9]{0,2}\.[0-9]{3}$")
    if not counts:  # an amount: only without a magnitude ("$2.125B" is 2.125 billion) and not "0.500"
        one_dot_group = pc.and_(one_dot_group, pc.equal(suffix, ""))
    eu_grouped = pc.or_(_true(eu_grouped), _true(one_dot_group))
    dotted = _true(_matches(num, r"^[0-9]*\.?[0-9]+$"))
    comma_decimal = _true(_matches(num, r"^[0-9]*,[0-9]+$"))
    canonical = pc.case_when(
        pc.make_struct(us_grouped, eu_grouped, dotted, comma_decimal),
        pc.replace_substring(num, pattern=",", replacement=""),
        pc.replace_substring(pc.replace_substring(num, pattern=".", replacement=""), pattern=",", replacement="."),
        num,
        pc.replace_substring(num, pattern=",", replacement="."),
    )
    magnitude_keys = pa.array(list(_MAGNITUDES), type=_LARGE_STRING)
    exponents = pa.array([str(e) for e in _MAGNITUDES.values()], type=_LARGE_STRING)
    exponent = pc.take(exponents, pc.index_in(suffix, value_set=magnitude_keys))
    text = _concat(pc.fill_null(parts["sign"], ""), canonical, "e", exponent)
    values = pc.cast(text, pa.float64())
    return values, present


def _float_array(values: Any) -> pd.arrays.FloatingArray:
    data = pc.fill_null(values, 0.0).to_numpy(zero_copy_only=False)
    mask = pc.is_null(values).to_numpy(zero_copy_only=False)
    return pd.arrays.FloatingArray(np.asarray(data, dtype="float64"), np.asarray(mask, dtype=bool))


def to_number(s: pd.Series) -> Normalized:
    """Float64 amounts from "$3.2B", "3200000000", "1,5 Mio", "€ 1.200.000,50", "$1M-$10M".

    Revenue columns mix currency symbols, magnitude words and US or European separators; see
    :func:`_parse_numbers` for how the ambiguous cases are read. A range becomes its lower bound, the
    only figure the source actually states as reached. Currencies are not converted.
    """
    values, present = _parse_numbers(s)
    problems = pc.if_else(pc.and_(present, pc.is_null(values)), _lit(NUMBER_PROBLEM), _NULL_STRING)
    return Normalized(pd.Series(_float_array(values), index=s.index, copy=False), _series(problems, s.index))


def to_int(s: pd.Series) -> Normalized:
    """Int64 counts from "1,200", "1200", "1.2k", "10,001+" or a range like "51-200".

    Employee counts come as exact numbers or as the size bands of LinkedIn and Apollo; a band becomes its
    lower bound ("51-200" -> 51, "10,001+" -> 10001) so filters like ">= 50 employees" stay true. A "." before
    three digits groups thousands ("1.200" is 1200, as a German export writes it); a value that is not a whole
    number ("1.5") is a problem rather than silently rounded.
    """
    values, present = _parse_numbers(s, counts=True)
    whole = pc.and_(pc.equal(values, pc.floor(values)), pc.less_equal(pc.abs(values), float(2**31 - 1)))
    values = pc.if_else(_true(whole), values, pa.scalar(None, pa.float64()))
    data = pc.fill_null(values, 0.0).to_numpy(zero_copy_only=False).astype("int64")
    mask = np.asarray(pc.is_null(values).to_numpy(zero_copy_only=False), dtype=bool)
    problems = pc.if_else(pc.and_(present, pc.is_null(values)), _lit(INT_PROBLEM), _NULL_STRING)
    return Normalized(
        pd.Series(pd.arrays.IntegerArray(data, mask), index=s.index, copy=False),
        _series(problems, s.index),
    )


_ONE_VALUE: Final[dict[str, Callable[[pd.Series], Normalized]]] = {
    "email": normalize_emails,
    "country": country_codes,
    "website": website_to_domain,
    "company_domain": website_to_domain,
    "linkedin_url": linkedin_urls,
    "employee_count": to_int,
    "annual_revenue": to_number,
}


def one_value(name: str, raw: str, country: str | None = None, default_region: str = "US") -> tuple[Any, str | None]:
    """One value as an import stores it in field ``name`` (None for a blank one), or None and the problem: for
    the writers of single values (``leads bulk set``, CRM pulls, privacy requests), so that every way in stores a
    value as the import does and its keys match. A phone is read in ``country`` (ISO code), else in
    ``default_region``."""
    return values_of(name, [raw], None if country is None else [country], default_region)[0]


def values_of(
    name: str, raws: Sequence[str], countries: Sequence[str | None] | None = None, default_region: str = "US"
) -> list[tuple[Any, str | None]]:
    """:func:`one_value` of each of ``raws`` (a phone read in its ``countries`` entry), the field's column
    normalized in one pass: a CRM sync normalizes a chunk of records' values, and a pass a value cost ~1 ms (a
    phone's more), a whole chunk's values hardly more than one."""
    results: list[tuple[Any, str | None]] = [(None, None)] * len(raws)
    given = [i for i, raw in enumerate(raws) if raw.strip()]
    if not given:
        return results
    column = pd.Series([raws[i].strip() for i in given], dtype=STRING)
    if name in ("phone", "mobile_phone"):
        regions = None if countries is None else pd.Series([countries[i] for i in given], dtype=STRING)
        phones = normalize_phones(column, regions, default_region)
        checked = Normalized(phones.e164, phones.problems)
    elif name in _ONE_VALUE:
        checked = _ONE_VALUE[name](column)
    else:
        for i in given:
            results[i] = (clean_value(name, raws[i]), None)
        return results
    for i, value, problem in zip(given, checked.values, checked.problems, strict=True):
        if pd.notna(problem):
            results[i] = (None, str(problem))
        else:
            results[i] = (value.item() if hasattr(value, "item") else value), None
    return results


def phone_extension(raw: str) -> str | None:
    """The extension written in a phone value (``+1 212 555 0101 x 77``), as the import keeps it apart."""
    return phone_extensions_of([raw])[0]


def phone_extensions_of(raws: Sequence[str]) -> list[str | None]:
    """:func:`phone_extension` of each of ``raws``, in one pass."""
    found: list[str | None] = [None] * len(raws)
    given = [i for i, raw in enumerate(raws) if raw.strip()]
    if given:
        column = pd.Series([raws[i].strip() for i in given], dtype=STRING)
        for i, extension in zip(given, normalize_phones(column, None).extension, strict=True):
            found[i] = None if pd.isna(extension) else str(extension)
    return found
