"""Turning a raw chunk of CSV records into rows ready to merge: mapped, normalized, validated, de-duplicated.

Pure and database-free, so it can run in worker processes and be tested on its own. Field-level problems (a
phone that is not a phone, an unknown country) are *warnings*: the value is kept in the lead's custom fields under
its original header and the row is imported. A row is *rejected* only when, after normalization, nothing is left
to reach or identify the lead, or when it fails the stored-lead schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from leads_pipeline.lib import normalize as norm
from leads_pipeline.lib.csvfile import RawChunk
from leads_pipeline.lib.fields import (
    CONTACT_KEYS,
    LEAD_COLUMNS,
    MATCH_KEYS,
    PHONE_EXTENSIONS,
    STORED_COLUMNS,
    TYPED_FIELDS,
    DedupeKey,
    full_name,
)
from leads_pipeline.lib.filters import CUSTOM_PREFIX
from leads_pipeline.lib.mapping import header_field, left_out_columns
from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.schemas import validate_leads

OnDuplicate = Literal["skip", "update"]


@dataclass(frozen=True)
class Problem:
    row_number: int
    column: str | None
    value: str | None
    reason: str
    severity: Literal["error", "warning"]
    subjects: tuple[str, ...] = ()
    """The blind indexes of the identifiers in ``value`` once it is sealed (for privacy requests)."""


def rejected_rows(problems: list[Problem]) -> int:
    """How many rows the problems rejected (a row can have several errors; warnings reject nothing)."""
    return len({p.row_number for p in problems if p.severity == "error"})


@dataclass
class PreparedChunk:
    """A chunk after preparation.

    ``frame`` has one row per lead to merge: ``row_number``, the :data:`STORED_COLUMNS`, one ``custom_<i>``
    column per unmapped file column and ``moved_<i>`` per mapped column whose invalid values move to custom.
    ``custom_headers`` names those columns' original headers.
    """

    index: int
    record_count: int
    frame: pd.DataFrame
    custom_headers: dict[str, str]
    problems: list[Problem] = field(default_factory=list)
    duplicates_in_file: int = 0
    duplicates_changing: int = 0
    """How many of the duplicates folded on update changed their lead (counted as updated, the others as
    skipped, as rows of a later chunk are)."""
    changing_into: dict[int, int] = field(default_factory=dict)
    """Those duplicates by the row number of the row they were folded into: where that row's lead is stored
    already, the merge counts the fold's rows against it instead (``store.imports._overcounted``)."""
    sealed_custom: list[str] = field(default_factory=list)
    """The ``moved_<i>`` columns holding raw values of sealed fields (sealed when staged)."""
    duplicates: pd.DataFrame = field(default_factory=pd.DataFrame)
    """On skip: the rows that are the lead of an earlier row of ``frame``, staged with it: that row may find a
    lead stored already and be skipped without giving its keys to a lead, and then the merge settles them again
    (``store.imports._settle_duplicates``)."""
    folded: pd.DataFrame = field(default_factory=pd.DataFrame)
    """On update: the rows of ``frame`` that are folds of several rows, as they were read (their own values),
    with ``tree``, the row number of the fold: the fold assumed those rows find the lists's leads as their first
    row does, and where they do not, the merge merges them one by one (``store.imports._unfold_tangled``). And
    with ``changes``: whether the row writes a value other than the one an earlier row of its fold brought (what
    the merge cannot tell from the fold, when the fold finds a stored lead, ``store.imports._overcounted``)."""

    @property
    def rejected(self) -> int:
        return rejected_rows(self.problems)


def _column(frame: pd.DataFrame, name: str) -> pd.Series | None:
    return frame[name] if name in frame.columns else None


def _problem_rows(
    problems: pd.Series,
    values: pd.Series,
    rows: pd.Series,
    header: str,
    severity: Literal["error", "warning"],
) -> list[Problem]:
    mask = problems.notna()
    if not mask.any():
        return []
    return [
        Problem(int(r), header, None if pd.isna(v) else str(v), str(p), severity)
        for r, v, p in zip(rows[mask], values[mask], problems[mask], strict=True)
    ]


REPEATED_HEADER = "the header row again (exports joined into one file?): not a lead, left out"


def _without_repeated_headers(
    columns: list[pa.Array], row_numbers: list[int], headers: Sequence[str]
) -> tuple[list[pa.Array], list[int], list[int]]:
    """The records and their row numbers without those that repeat the header (ignoring case and spaces):
    exports pasted one after the other keep each one's header, which would otherwise be imported as a lead named
    "First Name Last Name". Only the first column is compared unless it holds its header's name, so a chunk costs
    one comparison. The row numbers of those left out are the third list."""
    if not columns or not row_numbers:
        return columns, row_numbers, []

    def is_header(position: int) -> pa.Array:
        values = pc.utf8_lower(pc.utf8_trim(columns[position], characters=" \t\ufeff"))
        return pc.equal(values, headers[position].lower())

    repeated = is_header(0)
    if not pc.any(repeated).as_py():
        return columns, row_numbers, []
    for position in range(1, len(columns)):
        repeated = pc.and_(repeated, is_header(position))
    dropped = repeated.to_numpy(zero_copy_only=False)
    numbers = np.asarray(row_numbers)
    kept = pc.invert(repeated)
    return [c.filter(kept) for c in columns], numbers[~dropped].tolist(), numbers[dropped].tolist()


def prepare_chunk(
    raw: RawChunk,
    headers: Sequence[str],
    mapping: Mapping[str, str | None],
    *,
    dedupe: DedupeKey,
    on_duplicate: OnDuplicate,
    default_region: str,
) -> PreparedChunk:
    """Map, normalize, validate and de-duplicate one chunk. ``mapping`` is {csvColumn: field or None}."""
    problems = [Problem(p.row_number, p.column, p.value, p.reason, "error") for p in raw.problems]
    columns, row_numbers, repeated = _without_repeated_headers(
        raw.column_arrays(len(headers)), raw.row_numbers, headers
    )
    problems.extend(Problem(r, None, None, REPEATED_HEADER, "error") for r in repeated)
    index = pd.RangeIndex(len(row_numbers))
    rows = pd.Series(row_numbers, index=index, dtype="int64")
    out = pd.DataFrame(index=index)
    out["row_number"] = rows
    header_of: dict[str, str] = {}  # canonical field -> original header
    custom_headers: dict[str, str] = {}
    sealed_custom: list[str] = []
    left_out = left_out_columns(headers)
    for i, header in enumerate(headers):
        target = mapping.get(header)
        if target is None and header in left_out:
            continue
        cleaned = norm.clean_arrow(columns[i], index, keep_lines=norm.keeps_lines(target))
        if target is None:
            # a custom field as `leads bulk export` writes it ("custom.Owner") goes back under its own name
            named = header.startswith(CUSTOM_PREFIX) and len(header) > len(CUSTOM_PREFIX)
            custom_headers[f"custom_{i}"] = header[len(CUSTOM_PREFIX) :] if named else header
            out[f"custom_{i}"] = cleaned
            if named and header_field(custom_headers[f"custom_{i}"]) in crypto.SEALED_FIELDS:
                # the invalid values a column of a sealed field left in custom ("Phone 1": "555-01"), as the
                # export writes them back: sealed again, or they would be stored in clear
                sealed_custom.append(f"custom_{i}")
        else:
            header_of[target] = header
            out[target] = cleaned

    def move_invalid(target: str, result: norm.Normalized | norm.NormalizedPhones, values: pd.Series) -> None:
        bad = result.problems.notna()
        problems.extend(_problem_rows(result.problems, values, rows, header_of[target], "warning"))
        if bad.any():
            slot = f"moved_{headers.index(header_of[target])}"
            custom_headers[slot] = header_of[target]
            out[slot] = values.where(bad)
            if target in crypto.SEALED_FIELDS:
                sealed_custom.append(slot)

    country = _column(out, "country")
    if country is not None:
        result = norm.country_codes(country)
        move_invalid("country", result, country)
        out["country"] = result.values
    for target, fn in (
        ("email", norm.normalize_emails),
        ("website", norm.website_to_domain),
        ("company_domain", norm.website_to_domain),
        ("linkedin_url", norm.linkedin_urls),
        ("employee_count", norm.to_int),
        ("annual_revenue", norm.to_number),
    ):
        values = _column(out, target)
        if values is not None:
            result = fn(values)
            move_invalid(target, result, values)
            out[target] = result.values
    for target, extension in PHONE_EXTENSIONS.items():
        given = out.pop(extension) if extension in out.columns else None  # an extension in a column of its own
        values = _column(out, target)
        e164 = phones_ext = None
        if values is not None:
            phones = norm.normalize_phones(values, _column(out, "country"), default_region)
            move_invalid(target, phones, values)
            out[target] = e164 = phones.e164
            out[extension] = phones_ext = phones.extension
        if given is not None:
            checked = norm.phone_extensions(given, e164)
            if phones_ext is not None:  # an extension written in the phone itself wins
                out[extension] = phones_ext.fillna(checked.values)
            move_invalid(extension, checked, given)
    if "company_domain" not in out.columns and "website" in out.columns:
        out["company_domain"] = out["website"]
    full_name_mapped = "full_name" in out.columns
    names = norm.complete_names(
        _column(out, "first_name"),
        _column(out, "last_name"),
        _column(out, "full_name"),
        out.index,
        _column(out, "country"),
    )
    out["first_name"], out["last_name"], out["full_name"] = names.first_name, names.last_name, names.full_name
    company = _column(out, "company")
    out["company_key"] = (
        norm.company_key(company) if company is not None else pd.Series(pd.NA, index=out.index, dtype="str")
    )
    out["name_key"] = norm.name_key(out["first_name"], out["last_name"], out["company_key"])
    for name in LEAD_COLUMNS:
        if name not in out.columns:
            out[name] = pd.Series(
                pd.NA, index=out.index, dtype=TYPED_FIELDS[name][0] if name in TYPED_FIELDS else "str"
            )

    rejected: set[int] = set()
    seen_rejections: set[tuple[int, str | None]] = set()
    for failure in validate_leads(out[list(LEAD_COLUMNS)]):
        position = int(failure.index)  # type: ignore[call-overload]
        rejected.add(position)
        row_number = int(rows.iloc[position])
        if (row_number, failure.column) in seen_rejections:
            continue
        seen_rejections.add((row_number, failure.column))
        column_header = header_of.get(failure.column) if failure.column else None
        value = None if failure.column is None or pd.isna(cast(Any, failure.value)) else str(failure.value)
        problems.append(Problem(row_number, column_header, value, failure.reason, "error"))
    if rejected:
        out = out.drop(index=sorted(rejected))

    before = len(out)
    duplicates = out.iloc[:0]
    changing: dict[int, int] = {}
    unwritten: list[tuple[int, str]] = []
    folded = out.iloc[:0]
    if on_duplicate == "update":
        out, changing, unwritten, folded = _dedupe_within(out, dedupe, full_name_mapped=full_name_mapped)
    elif len(out) > 1:  # on skip, the rows that are the lead of an earlier row are set apart
        skipped = skipped_duplicates(out, dedupe)
        out, duplicates = out[~skipped], out[skipped]
    problems.extend(
        Problem(row_number, header_of.get(key), None, f"{key} not written: {HELD_BY_EARLIER_ROW}", "warning")
        for row_number, key in unwritten
    )
    problems.sort(key=lambda p: (p.row_number, p.severity))
    return PreparedChunk(
        index=raw.index,
        record_count=raw.record_count,
        frame=out.reset_index(drop=True),
        custom_headers=custom_headers,
        problems=problems,
        duplicates_in_file=before - len(out),
        duplicates_changing=sum(changing.values()),
        changing_into=changing,
        sealed_custom=sealed_custom,
        duplicates=duplicates.reset_index(drop=True),
        folded=folded.reset_index(drop=True),
    )


HELD_BY_EARLIER_ROW: Final = (
    "the lead of an earlier row of the file has it (the list is deduplicated by email and phone)"
)
"""Why a fold left a row's key out (the merge drops the warning when it merges the rows one by one after all)."""


@dataclass
class StagedChunk:
    """A prepared chunk encoded for ``COPY ... (FORMAT csv)``: small to send between processes, ready to load."""

    index: int
    record_count: int
    lead_count: int
    columns: list[str]
    data: bytes
    custom_headers: dict[str, str]
    problems: list[Problem]
    duplicates_in_file: int
    duplicates_changing: int
    changing_into: dict[int, int] = field(default_factory=dict)
    duplicate_rows: list[int] = field(default_factory=list)
    """On skip: the row numbers of the staged rows that are the lead of an earlier staged row."""
    folded_data: bytes = b""
    """On update: :attr:`PreparedChunk.folded` encoded as ``data`` is, with ``tree`` and ``changes`` after the
    columns."""
    folds: bool = False
    """On update: the chunk has folded rows (``folded_data``)."""
    staged: bool = False
    """The worker that prepared the chunk put ``data`` and ``folded_data`` in the database (``store.staging``) and
    left them out of the chunk it handed back."""

    @property
    def rejected(self) -> int:
        return rejected_rows(self.problems)

    @property
    def custom_columns(self) -> list[str]:
        """The staged columns that build the lead's custom JSON (after row_number and the stored columns)."""
        return self.columns[1 + len(STORED_COLUMNS) :]


_CONTACT_VALUE = re.compile(r"^\s*([^@\s]+@[^@\s]+\.[^@\s]+|\+?[\d\s().-]{7,}(\s*(x|ext\.?)\s*\d+)?)\s*$", re.I)
_DATE_VALUE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def _is_contact(value: str) -> bool:
    if not _CONTACT_VALUE.match(value):
        return False
    return "@" in value or (not _DATE_VALUE.match(value) and sum(c.isdigit() for c in value) >= 7)


def _contact_columns(frame: pd.DataFrame, custom_headers: dict[str, str]) -> list[str]:
    """Unmapped columns whose values are mostly email addresses or phone numbers (a second phone, a personal
    email): kept in the lead's custom fields, sealed like the mapped ones."""
    found: list[str] = []
    for slot in custom_headers:
        if not slot.startswith("custom_"):
            continue
        sample = frame[slot].dropna().head(200).astype(str).tolist()
        contacts = [v for v in sample if _is_contact(v)]
        if sample and len(contacts) * 2 >= len(sample):
            found.append(slot)
    return found


def _sealed_frame(chunk: PreparedChunk, sealer: crypto.Sealer) -> pd.DataFrame:
    """The chunk's frame with the sealed fields (and raw values of them moved to custom) sealed, and their blind
    indexes and the email domain added: done here, in the worker, so the merge only copies."""
    frame = chunk.frame.copy()
    for name in crypto.SEALED_FIELDS:
        values = frame[name]
        present = values.notna()
        plain = values[present].astype(str).tolist()
        frame[name] = pd.Series(pd.NA, index=frame.index, dtype="str")
        frame[f"{name}_bidx"] = pd.Series(pd.NA, index=frame.index, dtype="str")
        if plain:
            frame.loc[present, name] = sealer.seal_many(plain)
            frame.loc[present, f"{name}_bidx"] = sealer.blind_indexes(name, plain)
        if name == "email":
            frame["email_domain"] = norm.email_domains(values)
    for slot in [*chunk.sealed_custom, *_contact_columns(frame, chunk.custom_headers)]:
        values = frame[slot]
        present = values.notna()
        if present.any():
            # deterministic: the merge compares custom JSON whole (an unchanged row must stay unchanged)
            frame.loc[present, slot] = [sealer.seal(str(v), deterministic=True) for v in values[present]]
    return frame


PROBLEM_VALUE_CHARS = 1000
"""A rejected or warned cell is kept (sealed) up to this many characters: enough to see what was wrong with it,
without storing a pasted document whole in every error row. Its identifiers (``subjects``) come from all of it."""


def _sealed_problem(problem: Problem, sealer: crypto.Sealer) -> Problem:
    if problem.value is None:
        return problem
    kept = problem.value[:PROBLEM_VALUE_CHARS]
    return replace(problem, value=sealer.seal(kept), subjects=sealer.subjects(problem.value))


def stage_chunk(chunk: PreparedChunk, sealer: crypto.Sealer) -> StagedChunk:
    """Seal the chunk's PII and encode its rows as CSV for COPY (unquoted empty = NULL), in the worker that
    prepared it."""
    custom = sorted(chunk.custom_headers, key=lambda c: (c.split("_")[0], int(c.split("_")[1])))  # custom_i, moved_i
    columns = ["row_number", *STORED_COLUMNS, *custom]
    duplicate_rows: list[int] = []
    if len(chunk.duplicates):
        duplicate_rows = chunk.duplicates["row_number"].tolist()
        rows = pd.concat([chunk.frame, chunk.duplicates]).sort_values("row_number").reset_index(drop=True)
        chunk = replace(chunk, frame=rows, duplicates=rows.iloc[:0])
    folded_data = b""
    if len(chunk.folded):
        folded = _sealed_frame(replace(chunk, frame=chunk.folded), sealer)[[*columns, "tree", "changes"]]
        folded_data = _csv(folded)
    return StagedChunk(
        index=chunk.index,
        record_count=chunk.record_count,
        lead_count=len(chunk.frame),
        columns=columns,
        data=_csv(_sealed_frame(chunk, sealer)[columns]),
        custom_headers=chunk.custom_headers,
        problems=[_sealed_problem(p, sealer) for p in chunk.problems],
        duplicates_in_file=chunk.duplicates_in_file,
        duplicates_changing=chunk.duplicates_changing,
        changing_into=chunk.changing_into,
        duplicate_rows=duplicate_rows,
        folded_data=folded_data,
        folds=bool(folded_data),
    )


def _csv(frame: pd.DataFrame) -> bytes:
    """The rows as CSV for ``COPY ... (FORMAT csv)``: no header, unquoted empty = NULL."""
    buffer = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return buffer.getvalue().to_pybytes()


_Step = tuple[np.ndarray, np.ndarray, np.ndarray | None]
"""One way a row finds the lead of an earlier row: the rows' codes of one key (-1 for none), the rows that look
by it, and the rows they may find by it (None: any)."""


def _match_steps(frame: pd.DataFrame, dedupe: DedupeKey) -> list[_Step]:
    """The ways a row finds an earlier row's lead, in the order the merge tries them against stored leads
    (``store.imports._match``): the list's keys; for a row without any of them, the other contact key, the LinkedIn
    URL, then name + company (a row with a URL only to a row without one)."""
    primary = MATCH_KEYS[dedupe]
    bare = frame[list(primary)].isna().all(axis=1).to_numpy()
    keys: list[tuple[str, np.ndarray, np.ndarray | None]] = [(k, np.ones(len(frame), bool), None) for k in primary]
    if bare.any():
        no_url = frame["linkedin_url"].isna().to_numpy()
        keys += [(k, bare, None) for k in CONTACT_KEYS if k not in primary]
        keys += [("linkedin_url", bare, None), ("name_key", bare & no_url, None), ("name_key", bare & ~no_url, no_url)]
    codes = {key: pd.factorize(frame[key])[0] for key in {key for key, _, _ in keys}}
    return [(codes[key], looks, found) for key, looks, found in keys]


def _earlier_rows(steps: list[_Step], among: np.ndarray) -> np.ndarray:
    """Per row, the first row of ``among`` before it with its key, by the first step that finds one (-1: none)."""
    return _found_by(steps, among)[0]


def _found_by(steps: list[_Step], among: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_earlier_rows`, and per row the step that found it (-1: none)."""
    size = len(among)
    positions = np.arange(size)
    earlier = np.full(size, -1)
    via = np.full(size, -1)
    for step, (codes, looks, found) in enumerate(steps):
        first = np.full(codes.max(initial=-1) + 2, size)  # per code, its first row; codes -1 read the last: none
        candidates = among & (codes >= 0)
        if found is not None:
            candidates &= found
        rows = np.flatnonzero(candidates)
        present, at = np.unique(codes[rows], return_index=True)
        first[present] = rows[at]
        row = first[codes]
        hit = (earlier < 0) & looks & (row < positions)
        earlier[hit] = row[hit]
        via[hit] = step
    return earlier, via


def _folded_into(
    frame: pd.DataFrame, steps: list[_Step], dedupe: DedupeKey
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """On update: per row (by position), the position of the first row of its lead, and the rows (by position)
    whose second dedupe key another lead holds, with that key (not written, as the merge does not write it:
    ``store.imports._keep_keys_of_other_leads``). The lead takes each row's keys, so a row finds the lead of
    whichever earlier row it finds: the rows form trees, each row's first row is its tree's root (pointer jumping:
    a pass per doubling of the deepest tree's depth). That is what merging the rows one by one does as long as
    each row finds its tree's lead by a key value the lead still holds and no two trees share a key value; the
    trees where either fails (a later row overwrote the value, two leads came to hold one) are merged row by row
    (:func:`_merged_in_order`)."""
    earlier, via = _found_by(steps, np.ones(len(frame), bool))
    first = np.where(earlier < 0, np.arange(len(earlier)), earlier)
    while not np.array_equal(up := first[first], first):
        first = up
    tangled = _tangled_trees(frame, steps, first, via)
    if not tangled.any():
        return first, []
    rows = np.flatnonzero(tangled[first])
    lead_of, unwritten = _merged_in_order(frame, dedupe, rows)
    first[rows] = lead_of
    return first, unwritten


def _tangled_trees(frame: pd.DataFrame, steps: list[_Step], first: np.ndarray, via: np.ndarray) -> np.ndarray:
    """Per root (by position), whether its tree must be merged row by row: a row of it found it by a key value a
    row of the tree between them overwrote (or by name, from a row with a LinkedIn URL, when the tree holds
    another URL by then), or a key value a row looks by is held by it and another tree."""
    tangled = np.zeros(len(first), bool)
    order = np.argsort(first, kind="stable")  # each tree's rows in file order
    trees = first[order]
    url_codes = pd.factorize(frame["linkedin_url"])[0]
    for step, (codes, looks, found) in enumerate(steps):
        # the key value the tree holds when each row is read: the last one a row before it brought (-1: none)
        brought = (url_codes if found is not None else codes)[order]
        last = np.maximum.accumulate(np.where(brought >= 0, np.arange(len(order)), -1))
        before = np.concatenate([[-1], last[:-1]])
        held = np.empty(len(first), np.int64)
        held[order] = np.where((before >= 0) & (trees[before] == trees), brought[before], -1)
        lost = held >= 0 if found is not None else held != codes
        tangled[first[(via == step) & lost]] = True
        present = codes >= 0
        pairs = np.unique(np.stack([codes[present], first[present]]), axis=1)  # by code, then tree
        shared = pairs[0][np.flatnonzero(np.diff(pairs[0]) == 0)]
        contested = np.isin(pairs[0], np.intersect1d(shared, codes[present & looks]))
        tangled[pairs[1][contested]] = True
    return tangled


def _merged_in_order(
    frame: pd.DataFrame, dedupe: DedupeKey, rows: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """The rows (positions, in file order) merged one by one as the merge would merge them a row per chunk into
    a list holding none of their keys (``store.imports._match``): each row finds the oldest lead holding one of
    its keys now, in the order of :func:`_match_steps`, and gives it its keys. Returns per row its lead's first
    row, and the rows whose second dedupe key another lead holds, with that key (not written)."""
    primary = MATCH_KEYS[dedupe]
    keys = (*primary, *(k for k in CONTACT_KEYS if k not in primary), "linkedin_url", "name_key")
    values = {k: frame[k].iloc[rows].astype(object).where(frame[k].iloc[rows].notna(), None).tolist() for k in keys}
    holders: dict[str, dict[object, set[int]]] = {k: {} for k in keys}  # the leads holding each value now
    holds: dict[int, dict[str, object]] = {}  # each lead's key values now
    lead_of = np.empty(len(rows), dtype=np.int64)
    unwritten: list[tuple[int, str]] = []
    for i, row in enumerate(rows.tolist()):
        own = {k: values[k][i] for k in keys if values[k][i] is not None}
        looked = primary if any(k in own for k in primary) else keys
        lead = None
        for key in (k for k in looked if k in own):
            leads = holders[key].get(own[key], set())
            if key == "name_key" and "linkedin_url" in own:  # not a lead with another URL
                leads = {lead for lead in leads if "linkedin_url" not in holds[lead]}
            if leads:
                lead = min(leads)
                break
        if lead is None:
            lead = row
            holds[lead] = {}
        for key, value in own.items():
            before = holds[lead].get(key)
            if before == value:
                continue
            if dedupe == "both" and key in primary and holders[key].get(value):
                unwritten.append((row, key))
                continue
            if before is not None:
                holders[key][before].discard(lead)
            holders[key].setdefault(value, set()).add(lead)
            holds[lead][key] = value
        lead_of[i] = lead
    return lead_of, unwritten


def skipped_duplicates(frame: pd.DataFrame, dedupe: DedupeKey) -> np.ndarray:
    """On skip: which rows (by position) are the lead of an earlier row (:func:`_skipped`). ``frame`` has the
    columns of the keys (email, phone, linkedin_url, name_key)."""
    return _skipped(_match_steps(frame, dedupe))


def _skipped(steps: list[_Step]) -> np.ndarray:
    """On skip: which rows (by position) are duplicates. The lead keeps its first row's keys only: a row is a
    duplicate when it finds an earlier first row, and a first row when it finds none, whatever duplicates it shares
    keys with. A row that finds no earlier row at all is a first row, one that finds an earlier such row a
    duplicate (both vectorised); only the rows left, each finding only rows that are neither, are settled one by
    one in file order against the keys of the first rows among them: linear, however long the chains of rows each
    found only through the row before it (a crafted file)."""
    everyone = np.ones(len(steps[0][0]), bool)
    firsts = _earlier_rows(steps, everyone) < 0
    left = ~firsts
    if left.any():
        left &= _earlier_rows(steps, firsts) < 0
    rows = np.flatnonzero(left)
    by_step = [
        (codes[rows].tolist(), looks[rows].tolist(), (found[rows] if found is not None else codes[rows] >= 0).tolist())
        for codes, looks, found in steps
    ]
    taken: list[set[int]] = [set() for _ in steps]  # per step, the codes of the first rows among those left
    for i, row in enumerate(rows.tolist()):
        if any(looks[i] and codes[i] in keys for (codes, looks, _), keys in zip(by_step, taken, strict=True)):
            continue
        firsts[row] = True
        for (codes, _, found), keys in zip(by_step, taken, strict=True):
            if codes[i] >= 0 and found[i]:
                keys.add(codes[i])
    return ~firsts


def _dedupe_within(
    frame: pd.DataFrame, dedupe: DedupeKey, *, full_name_mapped: bool
) -> tuple[pd.DataFrame, dict[int, int], list[tuple[int, str]], pd.DataFrame]:
    """On update, collapse rows of one chunk that are the same lead: fold later non-empty values into the first
    row; returns the rows, how many folded rows changed their lead, by the row number of the row
    they were folded into, and the row numbers of rows whose second dedupe key another lead holds, with that key
    (left out of the fold, as the merge leaves it out of the update), and the rows folded (as read, with ``tree``,
    the row number of their fold: :attr:`PreparedChunk.folded`). A row is the lead of an earlier
    row exactly when it would find that lead stored by an earlier chunk, and the folded row is what the merge makes
    of the lead, so where the chunks end does not change the leads or the counts. (Without a full-name column a
    row's full name is its first and last name joined: the folded one is the folded first and last name joined, as
    the stored lead's follows its names, sql/021.)"""
    if len(frame) < 2:  # nothing to fold (every row of a chunk can have been rejected)
        return frame, {}, [], frame.iloc[:0]
    steps = _match_steps(frame, dedupe)
    first, unwritten = _folded_into(frame, steps, dedupe)
    later = first != np.arange(len(frame))
    if not later.any():
        return frame, {}, [], frame.iloc[:0]
    numbers = frame["row_number"].to_numpy()
    grouped = later.copy()
    grouped[first[later]] = True
    original = frame
    if unwritten:
        frame = frame.copy()
        for position, key in unwritten:
            cleared = [key, *([PHONE_EXTENSIONS[key]] if key in PHONE_EXTENSIONS else [])]
            frame.loc[frame.index[position], cleared] = pd.NA
    frame = _names_kept_whole_unwritten(frame, first, later)
    marked = _with_extensions_marked(frame[grouped])
    compared = [c for c in frame.columns if c != "row_number" and (full_name_mapped or c != "full_name")]
    changes, overwrites = _changes(marked[compared], first[grouped])
    changes = changes[later[grouped]]
    read = original[grouped].assign(tree=numbers[first[grouped]], changes=overwrites & later[grouped])
    into = numbers[first[grouped][later[grouped]][changes]]
    changing = {int(row): int(n) for row, n in zip(*np.unique(into, return_counts=True), strict=True)}
    folded = marked.groupby(first[grouped]).last()
    for extension in PHONE_EXTENSIONS.values():
        folded[extension] = folded[extension].mask(folded[extension] == _NO_EXTENSION)
    if not full_name_mapped:
        names = norm.complete_names(folded["first_name"], folded["last_name"], None, folded.index)
        folded["full_name"] = names.full_name
    firsts = frame.iloc[folded.index]
    folded.index = firsts.index
    folded["row_number"] = firsts["row_number"]
    unwritten_rows = [(int(numbers[position]), key) for position, key in unwritten]
    return pd.concat([folded[frame.columns], frame[~grouped]]).sort_index(), changing, unwritten_rows, read


def _names_kept_whole_unwritten(frame: pd.DataFrame, first: np.ndarray, later: np.ndarray) -> pd.DataFrame:
    """The rows with their last name left out where it is a name kept whole with no first name (山田花子) that is the
    first and last name earlier rows of its lead brought, joined (花子 and 山田): the merge does not write such a
    last name over a stored lead's two names (``store.imports._written``), and the fold does not either."""
    whole = later & frame["first_name"].isna().to_numpy() & frame["last_name"].notna().to_numpy()
    if not whole.any():
        return frame
    order = np.argsort(first, kind="stable")
    held = frame[["first_name", "last_name"]].iloc[order].groupby(first[order]).ffill().shift()
    held = held.iloc[np.argsort(order)]  # in the frame's order again: a later row's, the names before it
    firsts, lasts, own = held["first_name"].to_numpy(), held["last_name"].to_numpy(), frame["last_name"].to_numpy()
    for position in np.flatnonzero(whole):
        held_last = None if pd.isna(lasts[position]) else lasts[position]
        whole[position] = pd.notna(firsts[position]) and full_name(firsts[position], held_last) == own[position]
    if not whole.any():
        return frame
    frame = frame.copy()
    frame.loc[whole, "last_name"] = pd.NA
    return frame


def _changes(rows: pd.DataFrame, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row (in file order, ``first`` its lead's first row), whether it writes a value its lead does not hold
    yet: the merge's test of a changed lead (``store.imports._changed``) against the rows folded before it; and
    whether it writes a value other than one an earlier row brought (a value no earlier row brought may be the
    stored lead's already). A full name only joined from first and last name is left out: the merge writes it only
    where the lead has none. (A lead's first row is compared with the lead before: not counted.)"""
    order = np.argsort(first, kind="stable")
    ordered = rows.iloc[order]
    held = ordered.groupby(first[order]).ffill().shift()
    other = ordered.ne(held).fillna(True).astype(bool)
    changed, overwrites = np.empty(len(rows), bool), np.empty(len(rows), bool)
    changed[order] = (ordered.notna() & other).any(axis=1).to_numpy()
    overwrites[order] = (ordered.notna() & held.notna() & other).any(axis=1).to_numpy()
    return changed, overwrites


_NO_EXTENSION = ""
"""Stands, while rows are folded, for the extension of a phone that has none (no extension is ever empty)."""


def _with_extensions_marked(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with :data:`_NO_EXTENSION` as the extension of each phone that has none: folding takes each
    column's last value, and a phone's extension must come from the row its phone came from."""
    return frame.assign(
        **{
            extension: frame[extension].mask(frame[phone].notna() & frame[extension].isna(), _NO_EXTENSION)
            for phone, extension in PHONE_EXTENSIONS.items()
        }
    )
