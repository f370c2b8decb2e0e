"""Reading lead files as they come: any common encoding, delimiter, preamble, quoting.

A file is first *inspected* once from end to end (:func:`inspect_file`): encoding, delimiter, header position,
record count and every file-level defect are found before anything is written, so a file that cannot be
imported is refused whole with a one-line error. Then :func:`iter_chunks` streams the records in chunks of a
bounded size, each record with its line number in the file and each malformed record as a problem, not a crash.
When the file allows it (an ASCII-compatible encoding, line ends without lone CRs), :func:`chunk_ranges` instead
cuts the file into byte ranges at chunk boundaries, so that worker processes parse the chunks themselves and the
importing process never touches a record.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import itertools
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from leads_pipeline.lib.errors import InputFileError
from leads_pipeline.lib.mapping import contact_kind, data_row_header

DELIMITERS = (",", ";", "\t", "|")
MAX_FIELD_BYTES = 1_000_000
"""A field longer than this is not lead data (a 10 MB cell is a broken export or an attack): the file is refused."""

_SAMPLE_BYTES = 256 * 1024
_BLOCK_BYTES = 8 * 1024 * 1024
_HEADER_SEARCH_ROWS = 60


@dataclass(frozen=True)
class FileLayout:
    """What :func:`inspect_file` learned about a file: enough to read it again exactly the same way."""

    path: Path
    encoding: str
    delimiter: str
    header_line: int  # 1-based line number of the header row
    skip_records: int  # records before the header (preamble lines such as LinkedIn's "Notes:")
    headers: tuple[str, ...]
    total_rows: int  # data records after the header, blank lines excluded
    size: int
    sha256: str
    # Line number of every data record, when the file can be cut into byte ranges (see chunk_ranges); else None.
    record_lines: array[int] | None = field(default=None, repr=False, compare=False)
    # Every quote opens a quoted field at its start (the records were found in the bytes): Arrow's CSV reader then
    # reads the records exactly as Python's csv reader does.
    plain_quoting: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "header_line": self.header_line,
            "skip_records": self.skip_records,
            "total_rows": self.total_rows,
        }


@dataclass(frozen=True)
class RowProblem:
    """A record that could not be taken: its line, the column (if one), the value and what was expected."""

    row_number: int
    column: str | None
    value: str | None
    reason: str


@dataclass(frozen=True)
class ChunkRange:
    """Where chunk ``index`` lies in the file: enough for another process to read and parse it on its own."""

    path: Path
    encoding: str
    delimiter: str
    width: int
    index: int
    start: int  # byte offset of the chunk's first record
    end: int  # byte offset after its last record
    lines: array[int] = field(repr=False)  # the line number of each of its records, as inspection found them
    plain_quoting: bool = False

    @property
    def first_line(self) -> int:
        return self.lines[0]

    @property
    def records(self) -> int:
        return len(self.lines)


@dataclass
class RawChunk:
    """Up to ``chunk_rows`` consecutive records: the well-formed ones and the problems of the others."""

    index: int
    row_numbers: list[int] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    columns: list[pa.Array] | None = None
    """The well-formed records column by column when Arrow parsed the chunk (``rows`` is then empty)."""

    @property
    def record_count(self) -> int:
        return len(self.row_numbers) + len(self.problems)

    def column_arrays(self, width: int) -> list[pa.Array]:
        """The well-formed records as one string array per column."""
        if self.columns is not None:
            return self.columns
        if not self.rows:
            return [pa.array([], type=pa.large_string()) for _ in range(width)]
        return [pa.array(values, type=pa.large_string()) for values in zip(*self.rows, strict=True)]


def _read_sample(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(_SAMPLE_BYTES)


_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_LATIN1_IN_UTF8 = re.compile(rb"[\xc2\xc3][\x80-\xbf]")


def _detect_encoding(path: Path, sample: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 (with BOM) when the file is such, else Windows-1252 (cp1252, the
    superset of latin-1 that Excel writes on Western systems), or Mac Roman when its accented letters say so
    (:func:`_mac_roman_letters`: read as cp1252, "José" was stored as "JosŽ").

    Nothing is guessed beyond that: on a lead file's few accented names, statistical detection picks big5 for
    "Peña" in latin-1 and hp_roman8 for a UTF-8 file with one latin-1 row, and stores every accent corrupted. A
    file that is mostly UTF-8 with bytes that are not (two exports pasted together), or whose bytes are no
    character in cp1252 either, is refused, naming the line, rather than read wrongly."""
    if not sample:
        raise InputFileError(path, "the file is empty; expected a CSV file with a header row and data rows")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if (utf16 := _utf16_without_bom(sample)) is not None:
        return utf16
    if b"\x00" in sample:
        raise InputFileError(path, "this is a binary file, not a CSV text file (it contains NUL bytes)")
    not_utf8 = _first_undecodable(path, "utf-8")  # a BOM decodes as U+FEFF: the offsets stay the file's
    if not_utf8 is None:
        return "utf-8-sig" if sample.startswith(codecs.BOM_UTF8) else "utf-8"
    line, byte = not_utf8
    if _mac_roman_letters(path):
        return "mac_roman"
    in_sequences, high_bytes, mojibake = _utf8_census(path)
    # cp1252 text forms a UTF-8 pair by chance (É + quote), but hardly ever "Ã©" or "Â©" (UTF-8's é and ©).
    if mojibake or in_sequences > 2 * (high_bytes - in_sequences):
        raise InputFileError(
            path,
            f"line {line} is not UTF-8 (byte 0x{byte:02X}) but other lines are: the file mixes text encodings;"
            " fix that line or save the whole file as UTF-8, then retry",
        )
    not_cp1252 = _first_undecodable(path, "cp1252")
    if not_cp1252 is None:
        return "cp1252"
    line, byte = not_cp1252
    raise InputFileError(
        path,
        f"cannot tell the text encoding: line {line} has the byte 0x{byte:02X}, a character neither in UTF-8 nor in"
        " Windows-1252; save the file as UTF-8 CSV and retry",
    )


def _byte_set(*values: int) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[list(values)] = True
    return table


_MAC_ROMAN_CAPITALS = _byte_set(0x8A, 0x8C, 0x8E, 0x9F)
_MAC_ROMAN_IN_WORD = _byte_set(
    0x87, 0x88, 0x89, 0x8B, 0x93, 0x94, 0x95, 0x96, 0x98, 0x99, 0x9B, 0xA7, 0xBE, 0xBF, 0x8D, 0x8F, 0x90, 0x9D
)
"""Mac Roman's á à â ã ì î ï ñ ò ô õ ß æ ø: in cp1252 signs (a dagger, angle and double quotes, a bullet, the en
dash, §, ¾, ¿...), which stand between words, not inside one ("Stra§e", "Tr¿ndelag"); and its ç è ê ù, bytes
that are no character in cp1252. (Not its ë, cp1252's left single quote, which transliterations write inside
words: Uzbek's o with a turned comma, Arabic's ayn.)"""
_MAC_ROMAN_WORD_END = _byte_set(0x87, 0x88, 0x89)
"""Mac Roman's á à â, in cp1252 a dagger, a circumflex sign and a per mille sign, which do not end a word either."""
_CP1252_WORD_END = _byte_set(0x85, 0x94, 0x99)
"""cp1252's ellipsis, closing double quote and trade mark, which end a word (Mac Roman's Ö, î, ô hardly do)."""
_MAC_ROMAN_HIGH = np.zeros(256, dtype=bool)
_MAC_ROMAN_HIGH[0x80:0xA0] = True  # Mac Roman's accented letters, one of which may stand before another ("Núñez")
_LOWER = np.zeros(256, dtype=bool)
_LOWER[ord("a") : ord("z") + 1] = True
_UPPER = np.zeros(256, dtype=bool)
_UPPER[ord("A") : ord("Z") + 1] = True
_LETTER = _LOWER | _UPPER
_LOWER_CONSONANT = _LOWER & ~_byte_set(*b"aeiouy")
_CONSONANT = _LOWER_CONSONANT | (_UPPER & ~_byte_set(*b"AEIOUY"))
_CONTRACTED = _byte_set(*b"stdmlv")
"""The letters after an English apostrophe that follows a consonant: Sam's, don't, Ed'd, I'm, Bill'll."""
_QUOTES = _byte_set(0x84, 0x91, 0x92, 0x93, 0xD2, 0xD3, 0xD4, 0xD5)
"""cp1252's quotes that are Mac Roman's ë, í and ì, and its Ò Ó Ô Õ, Mac Roman's quotes."""
_BEFORE_FINAL_I = _LOWER_CONSONANT & ~_byte_set(*b"nsxz")
"""The letters before Mac Roman's í ending a word ("Martí", "jumhurí") that are not before cp1252's apostrophe
ending one: a plural's or a name's possessive ("Jones'", "Max'"), "goin'" and "'n'"."""


def _mac_roman_letters(path: Path) -> bool:
    """Whether the file is Mac Roman (Excel for Mac's "CSV (Macintosh)"), not cp1252, by the bytes around its
    accented letters. Its ä, å, é and ü are the bytes cp1252 reads as the capitals Š, Œ, Ž and Ÿ, which in cp1252
    text never follow a lower-case letter nor stand between a capital and a lower-case one ("JosŽ", "MŸller"),
    where cp1252's own accented lower-case letters (0xE0 to 0xFF, "José") do. Its á, ñ, ß... are cp1252 signs that
    do not stand inside a word (``_MAC_ROMAN_IN_WORD``, ``_MAC_ROMAN_WORD_END``). Its ó is the em dash, which does
    (word, dash, word), but does not end a word in "n" as Spanish's "-ón" does. Its ö and ú are cp1252's š and œ,
    and its í cp1252's apostrophe, which stand inside words too, but not between two consonants as the German ö,
    the Spanish ú and í do ("Schršder", "Jesœs", Martín; not "Dušan", "cœur", Bill's, don't). And cp1252's signs
    stand where signs do, where Mac Roman's letters would not: a dash between spaces, a double quote opening
    before a word, a closing one, an ellipsis or a trade mark after one (``_CP1252_WORD_END``), the apostrophe of
    "n't". The file is Mac Roman when it has more of the first than of the second (a stray "pre-sales" written
    with an en dash reads as Mac Roman's ñ, which the file's quotes and dashes outweigh). Mac Roman's ë is cp1252's
    opening single quote, which transliterations write inside words after a vowel ("O'zbekiston", "Sa'id") or a
    g ("o'g'li"), but not after another consonant, as Albanian's ë does ("Shkodër", "Tiranë"), nor ending a word
    ("Zoë", "België"). Its í and ì ending a word are cp1252's closing single quote (after a word ending in a
    consonant: "Martí") and German's closing double quote ("Forlì"): counted only beyond the file's opening
    single quotes and German opening quotes („), which such closing quotes answer. Its quotes and apostrophes
    are cp1252's capitals Ò Ó Ô Õ, which never follow a lower-case letter as they do ("Ra's al Khaymah").
    Still read as cp1252: a Mac Roman file whose only accents are an í ending a word after a vowel, a capital,
    n, s, x or z ("Potosí", as "Jones'" and "Max'"), an ë after a vowel ("Noël", as "Ka'ba"), or other Mac Roman
    signs (a quote opening a word, a dagger). (Counted with numpy at the high bytes only: a regular expression
    tried at every byte takes ~30 ms a MB.)"""
    mac = cp1252 = final_i = final_grave_i = single_openings = low_openings = 0
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            data = np.frombuffer(block, dtype=np.uint8)
            high = np.flatnonzero(data[1:] >= 0x80) + 1  # (a block's first byte: no letter before it to judge by)
            before, at = data[high - 1], data[high]
            after = data[np.minimum(high + 1, len(data) - 1)]
            then = data[np.minimum(high + 2, len(data) - 1)]
            in_word = _LETTER[before] | _MAC_ROMAN_HIGH[before]
            word_end = ~_LETTER[after] & ~_MAC_ROMAN_HIGH[after]
            mac += int(
                (
                    (_MAC_ROMAN_CAPITALS[at] & (_LOWER[before] | (_UPPER[before] & _LOWER[after])))
                    | (_MAC_ROMAN_IN_WORD[at] & in_word & _LOWER[after])
                    | (_MAC_ROMAN_WORD_END[at] & _LOWER[before] & word_end)
                    | ((at == 0x97) & in_word & (after == ord("n")) & ~_LETTER[then] & ~_MAC_ROMAN_HIGH[then])
                    | (
                        ((at == 0x9A) | (at == 0x9C) | ((at == 0x92) & ~_CONTRACTED[after]))
                        & _CONSONANT[before]
                        & _LOWER_CONSONANT[after]
                    )
                ).sum()
            )
            cp1252 += int(
                (
                    ((at >= 0xE0) & _LETTER[before])
                    | (((at == 0x96) | (at == 0x97)) & (before == ord(" ")) & (after == ord(" ")))
                    | ((at == 0x93) & ~_LETTER[before] & _LETTER[after])
                    | (_CP1252_WORD_END[at] & _LETTER[before] & word_end)
                    | ((at == 0x92) & (before == ord("n")) & (after == ord("t")) & ~_LETTER[then])
                ).sum()
            )
            quote = _QUOTES[at]  # judged apart: the rules below look at a few bytes only
            at, before, after, word_end = at[quote], before[quote], after[quote], word_end[quote]
            mac += int(
                (
                    ((at >= 0xD2) & (at <= 0xD5) & _LOWER[before])
                    | (
                        (at == 0x91)
                        & (before != ord("g"))
                        & ((_LOWER[before] & word_end) | (_CONSONANT[before] & _LOWER_CONSONANT[after]))
                    )
                ).sum()
            )
            final_i += int(((at == 0x92) & _BEFORE_FINAL_I[before] & word_end).sum())
            final_grave_i += int(((at == 0x93) & _LOWER[before] & word_end).sum())
            single_openings += int(((at == 0x91) & ~_LETTER[before] & _LETTER[after]).sum())
            low_openings += int(((at == 0x84) & ~_LETTER[before] & _LETTER[after]).sum())
    return mac + max(0, final_i - single_openings) + max(0, final_grave_i - low_openings) > cp1252


def _utf16_without_bom(sample: bytes) -> str | None:
    """UTF-16 LE or BE when the sample is such text without a byte order mark (as some database and script
    exports write it): Latin text in UTF-16 has a NUL byte in every other place, binary files do not."""
    even, odd = sample[0::2], sample[1::2]
    if len(odd) < 8:
        return None
    for encoding, nuls, chars in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if nuls.count(0) >= 0.9 * len(nuls) and chars.count(0) == 0:
            return encoding
    return None


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int] | None:
    """The line and value of the first byte that does not decode in ``encoding``, or None if the file decodes."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as handle:
        while True:
            block = handle.read(_BLOCK_BYTES)
            pending = len(decoder.getstate()[0])
            if block and not pending and block.isascii():  # decodes in UTF-8 and cp1252 (1 ms for 8 MB, decoding 3)
                offset += len(block)
                continue
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                position = offset - pending + error.start
                handle.seek(position)
                byte = handle.read(1)[0]
                return _line_at(handle, position), byte
            if not block:
                return None
            offset += len(block)


def _blocks(handle: io.BufferedReader, size: int) -> Iterator[bytes]:
    while size > 0 and (block := handle.read(min(size, _BLOCK_BYTES))):
        size -= len(block)
        yield block


def _line_at(handle: io.BufferedReader, position: int) -> int:
    """The 1-based line of the byte at ``position``, lines ending at LF, CRLF or a lone CR as the file's records
    are read (:func:`_open_text`): counting line feeds alone put every byte of a classic Mac file on line 1."""
    handle.seek(0)
    breaks = 0
    previous = b""
    for block in _blocks(handle, position):
        breaks += block.count(b"\n") + block.count(b"\r") - (previous + block).count(b"\r\n")
        previous = block[-1:]
    return breaks + 1


def _utf8_census(path: Path) -> tuple[int, int, int]:
    """How many of the file's non-ASCII bytes form UTF-8 sequences, how many non-ASCII bytes it has, and how
    many of its sequences encode Latin-1 letters and signs (U+0080 to U+00FF: é is C3 A9, read in cp1252 "Ã©")."""
    in_sequences = high = mojibake = 0
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            in_sequences += sum(len(m) for m in _UTF8_SEQUENCE.findall(block))
            high += len(_HIGH_BYTE.findall(block))
            mojibake += len(_LATIN1_IN_UTF8.findall(block))
    return in_sequences, high, mojibake


def _looks_binary(text: str) -> bool:
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\f")
    return controls > max(8, len(text) // 100)


def _sample_records(text: str, delimiter: str, truncated: bool) -> list[list[str]]:
    lines = text.splitlines(keepends=True)
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the sample's last line may be cut in the middle
    # newline="": lines end at LF, CRLF or a lone CR (a classic Mac file has no LF at all), as in _open_text
    reader = csv.reader(io.StringIO("".join(lines), newline=""), delimiter=delimiter)
    records: list[list[str]] = []
    try:
        for record in reader:
            records.append(record)
            if len(records) >= _HEADER_SEARCH_ROWS * 4:
                break
    except csv.Error:
        pass
    return records


def _choose_delimiter(text: str, truncated: bool) -> tuple[str, list[list[str]]]:
    """The delimiter under which most sampled records share one field count (and that count is the largest)."""
    best: tuple[float, int, str, list[list[str]]] | None = None
    for delimiter in DELIMITERS:
        records = [r for r in _sample_records(text, delimiter, truncated) if not _is_blank(r)]
        counts = Counter(len(r) for r in records if len(r) > 1)
        if not counts:
            continue
        width, seen = counts.most_common(1)[0]
        score = (seen / len(records), width, delimiter, records)
        if best is None or score[:2] > best[:2]:
            best = score
    if best is None:
        return ",", [r for r in _sample_records(text, ",", truncated) if not _is_blank(r)]
    return best[2], best[3]


def _header_index(records: list[list[str]]) -> int:
    """Index of the header among sampled records: the first one as wide as most records and with no blank name."""
    counts = Counter(len(r) for r in records)
    width = (
        counts.most_common(1)[0][0]
        if len(counts) == 1
        else max((w for w in counts if w > 1), key=lambda w: (counts[w], w))
    )
    for index, record in enumerate(records[:_HEADER_SEARCH_ROWS]):
        if len(record) == width and sum(1 for name in record if name.strip()) >= max(1, width - 1):
            return index
    return 0


def _check_headers(path: Path, headers: list[str], line: int) -> tuple[str, ...]:
    """The header's names, refused when one is empty, repeated or a person's email address or phone number, or
    when the row reads as a data row (:func:`data_row_header`: a file without a header row): a data row taken for
    the header (rows wider than the header row, a preamble guess, no header at all) would keep that person's data
    as column names in the import's mapping, out of reach of privacy export and erasure. The refusal names the
    line and column, never the value.

    Unnamed columns at the end are named "Column <n>": a delimiter after every line's last field (an export
    tool's habit) makes one, empty on every row; a value some row has there is kept as a custom field."""
    cleaned = [h.strip().strip("\ufeff") for h in headers]
    if len(cleaned) > 1 and all(len(name) > 1 and name[0] == name[-1] == "'" for name in cleaned):
        raise InputFileError(
            path,
            f"line {line}: the fields are quoted with apostrophes ('First Name'), which CSV readers take as part of"
            ' the value and which split a value holding the delimiter; save the file again with " as the quote'
            " character (LibreOffice: String delimiter) and retry",
        )
    named = len(cleaned)
    while named > 1 and not cleaned[named - 1]:
        named -= 1
    cleaned[named:] = [f"Column {position}" for position in range(named + 1, len(cleaned) + 1)]
    seen: dict[str, int] = {}
    for position, name in enumerate(cleaned, start=1):
        if not name:
            raise InputFileError(path, f"header column {position} has no name; give every column a header")
        if (kind := contact_kind(name)) is not None:
            raise InputFileError(
                path,
                f"line {line}, read as the header, has {kind} in column {position}: it is a data row (are the "
                "rows wider than the header row, or is the header missing?); give the file one header row as "
                "wide as its rows, naming every column",
            )
        key = name.casefold()
        if key in seen:
            raise InputFileError(
                path,
                f"duplicate header name {name!r} (columns {seen[key]} and {position}); rename one of them",
            )
        seen[key] = position
    if (found := data_row_header(cleaned)) is not None:
        position, kind = found
        raise InputFileError(
            path,
            f"line {line}, read as the header, looks like a data row ({kind} in column {position}, fewer known "
            "column names than values): is the header row missing? add one naming every column",
        )
    return tuple(cleaned)


_QUOTE, _LF, _CR = ord('"'), ord("\n"), ord("\r")
_BYTE_TRANSPARENT = ("utf-8", "ascii", "iso8859", "cp125", "mac-roman")
"""Encodings in which the bytes of quote, line feed and the delimiters only ever stand for those characters (no
multi-byte sequence contains them): in these, records can be found in the bytes. Prefixes of ``codecs.lookup``
names (utf-8 and utf-8-sig, latin-1 as iso8859-1, cp1252 for windows-1252, mac-roman)."""


class _RecordScan:
    """Where each record starts, found in the raw bytes with numpy instead of parsing every field.

    A line feed ends a record when an even number of quotes precede it: RFC 4180 quoting (with ``""`` inside
    quoted fields) always balances. Python's csv reader agrees with that count as long as every quote that opens
    a quoted section stands at the start of a field (csv takes a quote in the middle of an unquoted field
    literally); the scan checks that of every such quote, and gives up (``records`` returns None, and the file
    is parsed field by field) when one does not, or when a record is long enough to hold an over-long field.
    Blocks are fed in file order; 1M records take ~0.2 s instead of ~1.8 s of parsing.
    """

    def __init__(self, delimiter: str, data_start: int) -> None:
        self._delimiter = ord(delimiter)
        self._data_start = data_start
        self._quotes = 0  # quotes before the current block
        self._newlines = 0  # line feeds before the current block
        self._previous = _LF  # the byte before the current block
        self._usable = True
        self._ends: list[np.ndarray] = []  # offset of each line feed that ends a record
        self._lines: list[np.ndarray] = []  # 1-based line number of the line that feed ends
        # per byte value, 1 for text: not delimiter, quote nor line break (bytes.translate maps an 8 MB block in
        # ~8 ms, numpy's indexing of a 256-entry table took ~27 ms: ~0.5 s of a 1M-row file's inspection)
        self._text = bytes(0 if value in (self._delimiter, _QUOTE, _LF, _CR) else 1 for value in range(256))
        self._filled: list[np.ndarray] = []  # whether the record each feed ends has text
        self._filling = False  # whether the record the current block starts in has text before the block
        self._quotes_before: list[np.ndarray] = []  # how many quotes stand before each record-ending feed
        self._open_line = 0  # line of the last quote that opened a quoted field (not the second of a "" pair)

    def feed(self, block: bytes, offset: int) -> None:
        if not self._usable:
            return
        data = np.frombuffer(block, dtype=np.uint8)
        quotes = np.flatnonzero(data == _QUOTE)
        feeds = np.flatnonzero(data == _LF)
        opening = quotes[(self._quotes + np.arange(len(quotes))) % 2 == 0]
        if len(opening):
            before = np.where(opening > 0, data[np.maximum(opening - 1, 0)], self._previous)
            field_start = (before == self._delimiter) | (before == _LF) | (before == _CR) | (before == _QUOTE)
            field_start |= opening + offset == self._data_start
            if not field_start.all():
                self._usable = False
                return
            fresh = opening[before != _QUOTE]
            if len(fresh):
                self._open_line = self._newlines + int(np.searchsorted(feeds, fresh[-1])) + 1
        quotes_before = self._quotes + np.searchsorted(quotes, feeds)
        quoted = quotes_before % 2 == 1
        ends = feeds[~quoted]
        self._ends.append(ends + offset)
        self._lines.append(self._newlines + np.flatnonzero(~quoted) + 1)
        text = np.frombuffer(block.translate(self._text), dtype=np.bool_)
        if offset < self._data_start:  # a byte order mark is no text
            text = text.copy()
            text[: self._data_start - offset] = False
        if len(ends):
            filled = np.logical_or.reduceat(text[: ends[-1] + 1], np.concatenate(([0], ends[:-1] + 1)))
            filled[0] |= self._filling
            self._filled.append(filled)
            self._filling = bool(text[ends[-1] + 1 :].any())
        else:
            self._filling = self._filling or bool(text.any())
        self._quotes_before.append(quotes_before[~quoted])
        self._quotes += len(quotes)
        self._newlines += len(feeds)
        self._previous = int(data[-1]) if len(data) else self._previous

    def unclosed_quote_line(self) -> int | None:
        """The line of the quote that opens a quoted field never closed before the end of the file (an odd
        number of quotes in all): csv would read the rest of the file into that one field."""
        return self._open_line if self._usable and self._quotes % 2 else None

    def records(self, size: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(byte offset, line number) of the start of every non-blank record, or None if the scan gave up.

        A blank record is an empty line or one of delimiters only (",,,,": Excel writes one for every row below
        the data whose cells were once formatted), as :func:`_is_blank` reads them parsed. A record of nothing
        but quotes and delimiters may hold a field (``","``) or only empty ones (``"",""``): the scan gives
        up on it, and the parse decides."""
        if not self._usable:
            return None
        ends = np.concatenate([*self._ends, np.array([size], dtype=np.int64)]).astype(np.int64)
        end_lines = np.concatenate([*self._lines, np.array([self._newlines + 1], dtype=np.int64)])
        starts = np.concatenate([np.array([self._data_start], dtype=np.int64), ends[:-1] + 1])
        lines = np.concatenate([np.array([1], dtype=np.int64), end_lines[:-1] + 1])
        length = ends - starts
        if (length > MAX_FIELD_BYTES).any():
            return None
        blank = ~np.concatenate([*self._filled, np.array([self._filling])])
        quotes = np.concatenate([*self._quotes_before, np.array([self._quotes], dtype=np.int64)])
        quotes_in = quotes - np.concatenate([np.array([0], dtype=np.int64), quotes[:-1]])
        if (blank & (quotes_in > 0)).any():
            return None
        return starts[~blank], lines[~blank]


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    return open(path, encoding=encoding, newline="")


def _is_blank(record: list[str]) -> bool:
    """An empty line, or one of delimiters only (",,,,", below the data of a sheet Excel saved): no record, not
    an error; every field of it is empty."""
    return not any(record)


def _parse(path: Path, lines: Iterable[str], delimiter: str, first_line: int = 1) -> Iterator[tuple[int, list[str]]]:
    """(line number where the record starts, fields) for every non-blank record, raising on a huge field."""
    csv.field_size_limit(MAX_FIELD_BYTES)
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    line = first_line
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field limit" in str(exc):
                raise InputFileError(
                    path,
                    f"line {line}: a field is longer than {MAX_FIELD_BYTES:,} characters (fields are limited to "
                    "1 MB: a cell that large is a broken export); shorten it, or close a quote left open before it",
                ) from exc
            raise InputFileError(path, f"line {line}: {exc}; re-export the file as CSV and retry") from exc
        if not _is_blank(record):
            yield line, record
        line = first_line + reader.line_num


def _records(path: Path, layout_encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    with _open_text(path, layout_encoding) as handle:
        yield from _parse(path, handle, delimiter)


def _require_file(path: Path) -> None:
    """Refuse a path that is not a regular file, saying what it is. Standard input (``-``, ``/dev/stdin``) and a
    pipe (``<(curl ...)``, a FIFO), which a script hands over, were "no such file; check the path": the file is
    read more than once (inspected, then each chunk by its byte range; again to resume), which a pipe is not."""
    if path.is_dir():
        raise InputFileError(path, "this is a directory, not a file; import the CSV files in it one at a time")
    if str(path) == "-" or (path.exists() and not path.is_file()):
        raise InputFileError(
            path,
            "standard input, a pipe or a device is no file to import: the import reads the file more than once"
            " (and again to resume it); save it to a file and import that",
        )
    if not path.is_file():
        raise InputFileError(path, "no such file; check the path")


_ARCHIVES = (
    (b"\x1f\x8b", "this file is gzip-compressed, not CSV text; decompress it first (gunzip) and import the CSV"),
    (
        b"PK\x03\x04",
        "this file is a ZIP archive or an Excel workbook, not CSV text; extract the CSV (or save the sheet as CSV)"
        " and import that",
    ),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "this file is an Excel 97-2003 workbook (.xls) or another Office document, not CSV text; save the sheet as"
        " CSV UTF-8 and import that",
    ),
)
"""Leading bytes of compressed files imported by mistake, and what to do instead (checked before the encoding,
which would otherwise call them binary)."""


def _refuse_archive(path: Path, sample: bytes) -> None:
    for magic, problem in _ARCHIVES:
        if sample.startswith(magic):
            raise InputFileError(path, problem)


def file_sha256(path: Path) -> str:
    """The file's content hash: with the list, what says "this file was imported here before"."""
    _require_file(Path(path))
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _layout_from_scan(
    path: Path, encoding: str, delimiter: str, skip: int, starts: np.ndarray, lines: np.ndarray
) -> tuple[int, list[str], int, array[int]]:
    """Header line, header fields, data record count and record lines from a byte scan (only the header is
    parsed)."""
    if len(starts) <= skip:
        return 0, [], 0, array("q")
    end = int(starts[skip + 1]) if len(starts) > skip + 1 else None
    with path.open("rb") as handle:
        handle.seek(int(starts[skip]))
        text = handle.read(None if end is None else end - int(starts[skip])).decode(encoding, errors="replace")
    header_line = int(lines[skip])
    headers = next((record for _, record in _parse(path, io.StringIO(text, newline=""), delimiter)), [])
    record_lines = array("q")
    record_lines.frombytes(np.ascontiguousarray(lines[skip + 1 :], dtype=np.int64).tobytes())
    return header_line, headers, len(record_lines), record_lines


def _layout_from_parse(
    path: Path, encoding: str, delimiter: str, skip: int, lone_cr: bool
) -> tuple[int, list[str], int, array[int] | None]:
    """The same, parsing every record (files whose records cannot be found in the bytes)."""
    header_line = 0
    headers: list[str] = []
    total = 0
    record_lines: array[int] | None = None if lone_cr or encoding.startswith("utf-16") else array("q")
    end = _EndProbe()
    with _open_text(path, encoding) as handle:
        for position, (line, record) in enumerate(_parse(path, itertools.chain(handle, end), delimiter)):
            if end.reached:  # the reader hit the end of the file inside this record: in a quoted field
                raise _unclosed_quote(path, line + _line_breaks(record[:-1]))
            if position < skip:
                continue
            if position == skip:
                header_line, headers = line, record
                continue
            total += 1
            if record_lines is not None:
                record_lines.append(line)
    return header_line, headers, total, record_lines


class _EndProbe:
    """An empty iterator chained after a file's lines: ``reached`` says the csv reader asked for a line past the
    end. Python's csv reader (not strict) returns a record whose quoted field is still open at the end of the
    file as if it were closed; it is the only record produced after asking for more."""

    reached = False

    def __iter__(self) -> _EndProbe:
        return self

    def __next__(self) -> str:
        self.reached = True
        raise StopIteration


def _line_breaks(fields: list[str]) -> int:
    """How many line breaks (LF, CRLF or CR, as the file's lines were split) the fields hold."""
    text = "".join(fields)
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _unclosed_quote(path: Path, line: int) -> InputFileError:
    return InputFileError(
        path,
        f"line {line}: a quote opens a field that is never closed, so the rest of the file would be read as that "
        'one field; close the quoted field (a quote inside one is written "") or remove the quote, then retry',
    )


def inspect_file(path: Path) -> FileLayout:
    """Find encoding, delimiter, header and record count, refusing files that cannot be imported at all."""
    path = Path(path)
    _require_file(path)
    size = path.stat().st_size
    sample = _read_sample(path)
    _refuse_archive(path, sample)
    encoding = _detect_encoding(path, sample)
    text = sample.decode(encoding, errors="ignore")
    if not text.strip():
        raise InputFileError(path, "the file has no text; expected a header row and data rows")
    if _looks_binary(text):
        raise InputFileError(path, "this does not look like a CSV text file (too many control characters)")
    delimiter, records = _choose_delimiter(text, truncated=len(sample) >= _SAMPLE_BYTES)
    if not records:
        raise InputFileError(path, "the file has no rows; expected a header row and data rows")
    skip = _header_index(records)

    digest = hashlib.sha256()
    nul_at: int | None = None
    offset = 0
    lone_cr = False
    previous = b""
    byte_transparent = codecs.lookup(encoding).name.startswith(_BYTE_TRANSPARENT)
    scan = _RecordScan(delimiter, len(codecs.BOM_UTF8) if encoding == "utf-8-sig" else 0) if byte_transparent else None
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            digest.update(block)
            if nul_at is None and not encoding.startswith("utf-16") and (found := block.find(b"\x00")) >= 0:
                nul_at = offset + found
            if not lone_cr and (previous == b"\r" or b"\r" in block):  # (counting is ~0.5 s of a 227 MB file)
                joined = previous + block
                lone_cr = joined.count(b"\r") - joined.count(b"\r\n") > (1 if joined.endswith(b"\r") else 0)
            if scan is not None and not lone_cr:
                scan.feed(block, offset)
            previous = block[-1:]
            offset += len(block)
    lone_cr = lone_cr or previous == b"\r"
    if nul_at is not None:  # PostgreSQL text cannot hold NUL: refuse now rather than fail half-way
        with path.open("rb") as handle:
            line = _line_at(handle, nul_at)
        raise InputFileError(path, f"line {line}: contains a NUL byte, which a CSV text file never has; re-export it")

    found_records = None
    if scan is not None and not lone_cr:
        if (open_line := scan.unclosed_quote_line()) is not None:
            raise _unclosed_quote(path, open_line)
        found_records = scan.records(size)
    record_lines: array[int] | None
    if found_records is not None:
        header_line, headers, total, record_lines = _layout_from_scan(path, encoding, delimiter, skip, *found_records)
    else:
        header_line, headers, total, record_lines = _layout_from_parse(path, encoding, delimiter, skip, lone_cr)
    if not headers:
        raise InputFileError(path, "no header row found; expected column names in the first row")
    checked = _check_headers(path, headers, header_line)
    if total == 0:
        raise InputFileError(path, f"only a header row (line {header_line}), no data rows to import")
    return FileLayout(
        path=path,
        encoding=encoding,
        delimiter=delimiter,
        header_line=header_line,
        skip_records=skip,
        headers=checked,
        total_rows=total,
        size=size,
        sha256=digest.hexdigest(),
        record_lines=record_lines,
        plain_quoting=found_records is not None,
    )


def first_chunk(layout: FileLayout, limit: int = 200) -> RawChunk:
    """The first ``limit`` data records (for mapping suggestions and previews)."""
    return next(iter_chunks(layout, chunk_rows=limit), RawChunk(index=0))


def iter_chunks(layout: FileLayout, chunk_rows: int, start_chunk: int = 0) -> Iterator[RawChunk]:
    """Stream data records in chunks of ``chunk_rows`` records; chunks before ``start_chunk`` are skipped unparsed
    into fields only as far as counting them (a resumed import starts where the last committed chunk ended)."""
    width = len(layout.headers)
    chunk = RawChunk(index=0)
    for position, (line, record) in enumerate(_records(layout.path, layout.encoding, layout.delimiter)):
        if position <= layout.skip_records:
            continue
        if chunk.index >= start_chunk:
            _take(chunk, line, record, width, layout.delimiter)
        else:
            chunk.row_numbers.append(line)  # counted only, to know where the chunk ends
        if len(chunk.row_numbers) + len(chunk.problems) >= chunk_rows:
            if chunk.index >= start_chunk:
                yield chunk
            chunk = RawChunk(index=chunk.index + 1)
    if chunk.index >= start_chunk and (chunk.rows or chunk.problems):
        yield chunk


def _line_offsets(path: Path, lines: list[int]) -> list[int]:
    """Byte offset where each of the ascending 1-based ``lines`` starts (line ends are LF or CRLF here)."""
    offsets: list[int] = []
    wanted = iter(lines)
    target = next(wanted, None)
    seen = 1  # the line that starts at ``base``
    base = 0
    with path.open("rb") as handle:
        while target is not None and (block := handle.read(_BLOCK_BYTES)):
            newlines = block.count(b"\n")
            position = 0
            while target is not None and seen + newlines >= target:
                while seen < target:
                    position = block.index(b"\n", position) + 1
                    seen += 1
                    newlines -= 1
                offsets.append(base + position)
                target = next(wanted, None)
            seen += newlines
            base += len(block)
    if target is not None:
        raise InputFileError(path, f"the file changed while it was read (line {target} is gone); import it again")
    return offsets


def chunk_ranges(layout: FileLayout, chunk_rows: int, start_chunk: int = 0) -> list[ChunkRange] | None:
    """The byte range of every chunk from ``start_chunk`` on, or None when the file cannot be cut (then read it
    with :func:`iter_chunks`). Chunk ``k`` holds records ``k * chunk_rows`` onwards, exactly as in iter_chunks."""
    lines = layout.record_lines
    if lines is None:
        return None
    starts = list(range(start_chunk * chunk_rows, len(lines), chunk_rows))
    if not starts:
        return []
    offsets = _line_offsets(layout.path, [lines[i] for i in starts])
    ends = [*offsets[1:], layout.size]
    return [
        ChunkRange(
            path=layout.path,
            encoding="utf-8" if layout.encoding == "utf-8-sig" else layout.encoding,
            delimiter=layout.delimiter,
            width=len(layout.headers),
            index=first // chunk_rows,
            start=start,
            end=end,
            lines=lines[first : first + chunk_rows],
            plain_quoting=layout.plain_quoting,
        )
        for first, start, end in zip(starts, offsets, ends, strict=True)
    ]


def read_range(chunk: ChunkRange) -> RawChunk:
    """Parse one chunk's byte range (in whatever process holds it) into records and row problems."""
    with chunk.path.open("rb") as handle:
        handle.seek(chunk.start)
        data = handle.read(chunk.end - chunk.start)
    raw = _arrow_records(chunk, data) if chunk.plain_quoting else None
    if raw is None:
        raw = RawChunk(index=chunk.index)
        text = data.decode(chunk.encoding)
        for line, record in _parse(chunk.path, io.StringIO(text, newline=""), chunk.delimiter, chunk.first_line):
            _take(raw, line, record, chunk.width, chunk.delimiter)
    if raw.record_count != chunk.records:
        raise InputFileError(
            chunk.path,
            f"chunk {chunk.index} (from line {chunk.first_line}) has {raw.record_count} records where "
            f"{chunk.records} were counted; the file changed while it was imported, import it again",
        )
    return raw


def _arrow_records(chunk: ChunkRange, data: bytes) -> RawChunk | None:
    """The chunk parsed by Arrow's CSV reader straight into columns: ~0.1 s for 50k records, where csv rows turned
    into columns take ~0.65 s. None (parse it with csv) when a record has the wrong number of fields, which is
    reported with its line, or when Arrow's records do not line up with the ones inspection found in the bytes."""
    names = [str(i) for i in range(chunk.width)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                column_names=names, encoding=chunk.encoding, use_threads=False, block_size=max(len(data), 1 << 20)
            ),
            parse_options=pacsv.ParseOptions(delimiter=chunk.delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.large_string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):  # a record of the wrong width, among others
        return None
    if table.num_rows > chunk.records:  # lines of delimiters only (",,,,"), which inspection did not count
        table = table.filter(functools.reduce(pc.or_, (pc.not_equal(column, "") for column in table.columns)))
    if table.num_rows != chunk.records:
        return None
    return RawChunk(
        index=chunk.index,
        row_numbers=chunk.lines.tolist(),
        columns=[table.column(i).combine_chunks() for i in range(chunk.width)],
    )


def _take(chunk: RawChunk, line: int, record: list[str], width: int, delimiter: str) -> None:
    """Add a record to the chunk: as a row when it has the header's width, else as a problem."""
    if len(record) == width:
        chunk.rows.append(record)
        chunk.row_numbers.append(line)
    else:
        raw = delimiter.join(record)
        reason = f"expected {width} fields, found {len(record)}"
        if len(record) == 1:  # a report's "Grand Totals (6 records)", "Confidential Information - Do Not Distribute"
            reason += ": a line of text, not a lead (a report's title, totals or footer line?)"
        chunk.problems.append(RowProblem(line, None, raw[:200], reason))
