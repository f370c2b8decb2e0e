"""Reading back what Python's csv module writes, with generated rows: quotes, embedded line breaks, every
delimiter, a byte order mark or non-ASCII text in a field, empty fields, in UTF-8 (with and without BOM) and
Windows-1252. Whether the records are parsed field by field (``iter_chunks``) or cut into byte ranges for the
workers (``chunk_ranges``, ``read_range``, Arrow's reader), the header and every value come back as written."""

from __future__ import annotations

import csv
import io
import tempfile
import unicodedata
from pathlib import Path
from typing import NamedTuple

from hypothesis import assume, given
from hypothesis import strategies as st

from leads_pipeline.lib.csvfile import RawChunk, chunk_ranges, inspect_file, iter_chunks, read_range

NAMES = ["First Name", "Last Name", "Email", "Company", "Title", "City", "Notes", "Website", "Phone", "Industry"]
"""Header names the mapping knows: a header of arbitrary text is refused when it reads as a data row."""
ANY = st.characters(exclude_categories=("Cs",)).filter(lambda c: unicodedata.category(c) != "Cc" or c in "\t\n\r")
"""Any character a text file holds (control characters aside: a file of them is refused as binary)."""
SPECIAL = st.sampled_from(list(",;\t|\"\n\r '\ufeffé€ß中"))
WESTERN = st.sampled_from(list("abcXYZ 019,;\t|\"\n\r'-.@éèêëàâäçôöüùîïñßÉÈÄÖÜÑ"))
"""cp1252 text of Western names: which of cp1252 and Mac Roman a file is, is judged by how its accented letters
stand among letters (``_mac_roman_letters``), so arbitrary signs between letters are genuinely ambiguous."""


class Dialect(NamedTuple):
    delimiter: str
    lineterminator: str
    quoting: int


@st.composite
def files(draw: st.DrawFn) -> tuple[str, list[str], list[list[str]], Dialect]:
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    alphabet = WESTERN if encoding == "cp1252" else st.one_of(ANY, SPECIAL)
    width = draw(st.integers(2, 5))
    header = draw(st.lists(st.sampled_from(NAMES), min_size=width, max_size=width, unique=True))
    rows = draw(
        st.lists(st.lists(st.text(alphabet, max_size=12), min_size=width, max_size=width), min_size=1, max_size=8)
    )
    dialect = Dialect(
        draw(st.sampled_from([",", ";", "\t", "|"])),
        draw(st.sampled_from(["\r\n", "\n"])),
        draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
    )
    return encoding, header, rows, dialect


def _records(chunk: RawChunk) -> list[list[str]]:
    if chunk.columns is None:
        return chunk.rows
    return [list(record) for record in zip(*(column.to_pylist() for column in chunk.columns), strict=True)]


def _without_bom(rows: list[list[str]]) -> list[list[str]]:
    return [[value.replace("\ufeff", "") for value in row] for row in rows]


@given(files(), st.integers(1, 4))
def test_what_csv_writes_reads_back_the_same(file: tuple[str, list[str], list[list[str]], Dialect], size: int) -> None:
    encoding, header, rows, dialect = file
    written = io.StringIO(newline="")
    writer = csv.writer(written, **dialect._asdict())
    writer.writerow(header)
    writer.writerows(rows)
    data = [row for row in rows if any(row)]  # a row of empty fields is no record
    # Narrowed: a file of only such rows is refused ("only a header row"), rightly.
    assume(data)
    # Narrowed: with LF line ends, csv writes a field holding a CR unquoted (it quotes only the line terminator's
    # characters), and a lone CR ends a line for every reader, Python's own included: such a file is ambiguous.
    assume(
        dialect.lineterminator == "\r\n"
        or dialect.quoting == csv.QUOTE_ALL
        or not any("\r" in value for row in rows for value in row)
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "leads.csv"
        path.write_bytes(written.getvalue().encode(encoding))
        layout = inspect_file(path)
        assert (layout.delimiter, list(layout.headers), layout.total_rows) == (dialect.delimiter, header, len(data))
        chunks = list(iter_chunks(layout, size))
        assert [p for chunk in chunks for p in chunk.problems] == []
        assert [record for chunk in chunks for record in _records(chunk)] == data
        ranges = chunk_ranges(layout, size)
        if ranges is not None:
            read = [read_range(r) for r in ranges]
            assert [p for chunk in read for p in chunk.problems] == []
            # Narrowed: Arrow drops a U+FEFF opening a chunk's first field (as a file's BOM); the import removes
            # U+FEFF from every value anyway (normalize's clean_arrow), so no stored value differs.
            assert _without_bom([record for chunk in read for record in _records(chunk)]) == _without_bom(data)
