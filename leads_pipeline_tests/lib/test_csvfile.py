"""Reading files as users export them: encodings, delimiters, preambles, quoting, and files that must be refused."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import random
import zipfile
from pathlib import Path

import pytest

from leads_pipeline.lib import csvfile
from leads_pipeline.lib.csvfile import (
    MAX_FIELD_BYTES,
    RawChunk,
    chunk_ranges,
    first_chunk,
    inspect_file,
    iter_chunks,
    read_range,
)
from leads_pipeline.lib.errors import InputFileError
from leads_pipeline_tests.paths import DATABLIST, EXPORTS

ROWS = [
    ["First Name", "Last Name", "Email"],
    ["José", "Núñez", "jose@example.es"],
    ["Zoë", "Brontë", "zoe@example.co.uk"],
]


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _csv(rows: list[list[str]], delimiter: str = ",", newline: str = "\n") -> str:
    return newline.join(delimiter.join(r) for r in rows) + newline


def _read(raw: RawChunk) -> tuple[int, list[int], list[list[str]], list[object]]:
    """A chunk as records, whether csv parsed it into rows or Arrow into columns."""
    rows = (
        raw.rows if raw.columns is None else [list(r) for r in zip(*(c.to_pylist() for c in raw.columns), strict=True)]
    )
    return raw.index, raw.row_numbers, rows, list(raw.problems)


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252"), ("utf-16", "utf-16")],
)
def test_detects_encoding_and_decodes_names(tmp_path: Path, encoding: str, expected: str) -> None:
    path = _write(tmp_path / "leads.csv", _csv(ROWS), encoding)
    layout = inspect_file(path)
    assert layout.encoding == expected
    assert layout.headers == ("First Name", "Last Name", "Email")
    assert first_chunk(layout).rows[0][:2] == ["José", "Núñez"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read_not_called_binary(tmp_path: Path, encoding: str) -> None:
    """Was refused as "a binary file (it contains NUL bytes)"."""
    layout = inspect_file(_write(tmp_path / "leads.csv", _csv(ROWS, "\t", "\r\n"), encoding))
    assert (layout.encoding, layout.delimiter, layout.headers) == (encoding, "\t", tuple(ROWS[0]))
    assert [c.rows for c in iter_chunks(layout, chunk_rows=10)] == [ROWS[1:]]


@pytest.mark.parametrize(
    "text",
    ["Email,Name\nz@x.com,Ñoño Peña\n", "Email,Name\nr@x.com,Renée Café\nj@x.com,JOSÉ\u2019S\n"],
    ids=["latin-1 Spanish", "cp1252 with a byte pair that is also UTF-8"],
)
def test_a_short_legacy_file_is_read_as_cp1252_not_guessed(tmp_path: Path, text: str) -> None:
    """Statistical detection read "Ñoño Peña" as big5 ("峱隳 Pe鎙"); a few accents must come back as written."""
    layout = inspect_file(_write(tmp_path / "leads.csv", text, "cp1252"))
    assert layout.encoding == "cp1252"
    assert [row[1] for row in first_chunk(layout).rows] == [line.split(",")[1] for line in text.splitlines()[1:]]


@pytest.mark.parametrize("newline", ["\r", "\n"])
def test_a_mac_roman_file_is_read_as_mac_roman(tmp_path: Path, newline: str) -> None:
    """Excel for Mac's "CSV (Macintosh)": read as cp1252, "José Müller" was stored as "JosŽ MŸller"."""
    rows = [*ROWS, ["Renée", "Ångström", "r@example.fr"], ["Zoë", "“Mäkelä” \u2013 Bröd", "z@example.fi"]]
    layout = inspect_file(_write(tmp_path / "mac.csv", _csv(rows, newline=newline), "mac_roman"))
    assert layout.encoding == "mac_roman"
    ranges = chunk_ranges(layout, chunk_rows=10)
    chunks = [read_range(r) for r in ranges] if ranges is not None else list(iter_chunks(layout, chunk_rows=10))
    assert [row for chunk in chunks for row in _read(chunk)[2]] == rows[1:]


def test_a_cp1252_file_with_cp1252_capitals_and_quotes_stays_cp1252(tmp_path: Path) -> None:
    text = "Email,Name,Notes\na@x.com,José Šimek,“ŒUVRE” \u2013 O\u2019Brien\u2019s\nb@x.com,Ève Noël,don\u2019t\n"
    layout = inspect_file(_write(tmp_path / "win.csv", text, "cp1252"))
    assert layout.encoding == "cp1252"
    assert _read(first_chunk(layout))[2] == [line.split(",") for line in text.splitlines()[1:]]


@pytest.mark.parametrize(
    "names",
    [
        ["Jörg,Schröder,Köhler AG", "Björn,Möller,Göbel GmbH"],
        ["Martín,Rodríguez,Ramírez SL", "Agustín,Martínez,Ibarra SA"],
        ["Iñaki,Muñoz,Peña Hermanos", "Jesús,Núñez,Zoë Design"],
        ["Ramón,León,Concepción SL", "Horst,Weiß,Großmann GmbH"],
        ["Arben,Hoxha,Tiranë Shpk", "Besa,Dibër,Shkodër Group"],
        ["Zoë,Janssens,België BV", "Marco,Rossi,Forlì"],
        ["Jordi,Martí,Puig SL", "Luca,Bianchi,Forlì Cesena"],
        ["Sean,O\u2019Neil,Ra\u2019s al Khaymah LLC", "Dana,Smith,Farg\u2018ona Trade"],
        ["Ramón,León,Concepción SL", "Simón,Colón,Asunción SA"],
    ],
    ids=[
        "German o-umlaut",
        "Spanish i-acute",
        "Spanish n-tilde u-acute",
        "Spanish o-acute, German sharp s",
        "Albanian e-diaeresis",
        "e-diaeresis and i-grave ending a word",
        "i-acute and i-grave ending a word",
        "apostrophes only",
        "Spanish o-acute ending a word only",
    ],
)
def test_a_mac_roman_file_of_other_accents_is_read_as_mac_roman(tmp_path: Path, names: list[str]) -> None:
    """Mac Roman's í, ñ, ö, ú, ó, ß, ë, ì are cp1252's apostrophe, en dash, š, œ, em dash, §, opening single and
    double quotes, and its apostrophes cp1252's Õ and Ô: a file without é, ä, å or ü (cp1252's Ž, Š, Œ, Ÿ) was
    read as cp1252 and stored "Mart\u2019n", "Mu\u2013oz", "Schršder", "Tiran\u2018", "Forl\u201c", "RaÕs"."""
    text = _csv([["First Name", "Last Name", "Company"], *(name.split(",") for name in names)], newline="\r")
    layout = inspect_file(_write(tmp_path / "mac.csv", text, "mac_roman"))
    assert layout.encoding == "mac_roman"
    assert [",".join(row) for row in first_chunk(layout).rows] == names


@pytest.mark.parametrize(
    "notes",
    [
        "Dušan Kašpar / cœur de Bœuf",
        "don\u2019t call O\u2019Brien\u2019s desk \u2013 lead\u2014call back",
        "Farg\u2018ona / Sa\u2018id \u2013 \u201cpre\u2013sales\u201d / Acme\u2122",
        "the \u2018urgent\u2019 line / Jones\u2019 desk / Max\u2019 Auto / rock \u2019n\u2019 roll / un po\u2019",
        "Status \u201eoffen\u201c / Firma \u201eMeyer und Sohn\u201c",
        "Rustam o\u2018g\u2018li / tog\u2018 / Jum\u2018a / Hawai\u2018i",
    ],
    ids=[
        "s-caron and oe",
        "apostrophes and dashes",
        "transliteration and a dash in a word",
        "closing single quotes",
        "German quotes",
        "opening single quotes in words",
    ],
)
def test_a_cp1252_file_with_what_mac_roman_letters_would_be_stays_cp1252(tmp_path: Path, notes: str) -> None:
    """cp1252's š, œ, quotes and dashes are Mac Roman's ö, ú, í, ì, ë, ñ and ó where they stand as cp1252 writes
    them."""
    text = f"Email,Notes\na@x.com,{notes}\nb@x.com,Ann\n"
    layout = inspect_file(_write(tmp_path / "win.csv", text, "cp1252"))
    assert layout.encoding == "cp1252"
    assert first_chunk(layout).rows[0] == ["a@x.com", notes]


def test_a_utf8_file_with_a_latin1_line_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    rows = "".join(f"m{i}@x.com,García\n" for i in range(5))
    path.write_bytes(("Email,Name\n" + rows).encode() + "m9@x.com,Renée\n".encode("latin-1"))
    with pytest.raises(InputFileError, match=r"line 7 is not UTF-8 \(byte 0xE9\).*mixes text encodings"):
        inspect_file(path)


def test_a_latin1_file_with_some_utf8_lines_is_refused_too(tmp_path: Path) -> None:
    """Read as cp1252, the UTF-8 lines' "García" would be stored as "GarcÃ­a"."""
    path = tmp_path / "mostly-latin1.csv"
    utf8 = "".join(f"u{i}@x.com,José García\n" for i in range(10)).encode()
    latin1 = "".join(f"l{i}@x.com,Peña López\n" for i in range(30)).encode("latin-1")
    path.write_bytes(b"Email,Name\n" + utf8 + latin1)
    with pytest.raises(InputFileError, match=r"line 12 is not UTF-8 \(byte 0xF1\) but other lines are"):
        inspect_file(path)


def test_the_line_of_a_bad_byte_counts_from_the_files_start_after_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"Email,Name\nann@x.com,Ann\npe@x.com,Pe\xf1a\n")
    with pytest.raises(InputFileError, match=r"line 3 is not UTF-8 \(byte 0xF1\)"):
        inspect_file(path)


def test_bytes_that_are_no_character_in_cp1252_are_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(b"Email,Name\nq@x.com,Ann\nr@x.com,a\x81b\n")
    with pytest.raises(InputFileError, match=r"line 3 has the byte 0x81, a character neither in UTF-8 nor"):
        inspect_file(path)


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"])
@pytest.mark.parametrize(
    ("name", "bad", "reason"),
    [
        ("Garc\xeda", "Pe\xf1a".encode("latin-1"), r"line 202 is not UTF-8 \(byte 0xF1\)"),
        ("Garcia", b"a\x81b", r"line 202 has the byte 0x81, a character neither in UTF-8 nor"),
        ("Garcia", b"a\x00b", r"line 202: contains a NUL byte"),
    ],
)
def test_a_refusal_names_the_line_whatever_the_files_line_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str, name: str, bad: bytes, reason: str
) -> None:
    """A classic Mac file (lone CRs) had every bad byte on "line 1": lines were counted by their line feeds.
    Read in blocks of 7 bytes, so that some CRLF is cut between two blocks; the NUL byte lies past the sample."""
    monkeypatch.setattr(csvfile, "_BLOCK_BYTES", 7)
    monkeypatch.setattr(csvfile, "_SAMPLE_BYTES", 1024)
    rows = "".join(f"m{i}@x.com,{name}{newline}" for i in range(200)).encode()
    path = tmp_path / "leads.csv"
    path.write_bytes(f"Email,Name{newline}".encode() + rows + b"z@x.com," + bad + newline.encode())
    with pytest.raises(InputFileError, match=reason):
        inspect_file(path)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_sniffs_delimiter(tmp_path: Path, delimiter: str) -> None:
    rows = [*ROWS, ["Ann", "Lee, Jr.", "ann@example.com"]] if delimiter != "," else ROWS
    path = _write(tmp_path / "leads.csv", _csv(rows, delimiter))
    layout = inspect_file(path)
    assert layout.delimiter == delimiter
    assert layout.total_rows == len(rows) - 1


def test_quoted_fields_with_embedded_newlines_keep_line_numbers(tmp_path: Path) -> None:
    text = 'Name,Email,Notes\r\nAnn,ann@example.com,"line one\r\nline two"\r\nBob,bob@example.com,plain\r\n'
    layout = inspect_file(_write(tmp_path / "leads.csv", text))
    chunk = first_chunk(layout)
    assert chunk.rows[0][2] == "line one\r\nline two"
    assert chunk.row_numbers == [2, 4]  # Bob starts on line 4 because Ann's note spans two lines
    assert layout.total_rows == 2


def test_linkedin_connections_preamble_is_skipped(tmp_path: Path) -> None:
    export = (EXPORTS / "linkedin_Connections_header.csv").read_text(encoding="utf-8")
    row = "Ann,Lee,https://www.linkedin.com/in/annlee,,Acme,CTO,01 Jan 2024\n"
    layout = inspect_file(_write(tmp_path / "Connections.csv", export + row))
    assert layout.headers == (
        "First Name",
        "Last Name",
        "URL",
        "Email Address",
        "Company",
        "Position",
        "Connected On",
    )
    assert layout.skip_records == 2
    assert first_chunk(layout).rows == [row.strip().split(",")]


def test_preamble_before_header_with_data(tmp_path: Path) -> None:
    text = 'Notes:\n"Exported by someone, with a comma"\n\nFirst Name,Last Name,Email\nAnn,Lee,ann@example.com\n'
    layout = inspect_file(_write(tmp_path / "Connections.csv", text))
    assert layout.header_line == 4
    assert first_chunk(layout).row_numbers == [5]


@pytest.mark.parametrize(
    ("rows", "kind", "column"),
    [
        # rows one field wider than the header (an unnamed last column): the first row was taken for the header
        ("Ann,Lee,ann.lee@example.com,Acme,VIP\nBo,Li,bo@example.com,Initech,\nCy,Ng,,Umbrella,\n", "an email", 3),
        ("Ann,Lee,+1 415 555 0100,Acme,VIP\nBo,Li,+1 415 555 0101,Initech,\nCy,Ng,,Umbrella,\n", "a phone number", 3),
        ("Ann,Lee,(415) 555-0100,Acme,VIP\nBo,Li,,Initech,\nCy,Ng,,Umbrella,\n", "a phone number", 3),
    ],
)
def test_a_data_row_read_as_the_header_is_refused_without_its_values(
    tmp_path: Path, rows: str, kind: str, column: int
) -> None:
    """Its cells became column names: the person's name, email and phone kept in the import's mapping, which
    privacy export and erasure do not reach. An email or phone number is never a column's name."""
    path = _write(tmp_path / "leads.csv", "First Name,Last Name,Contact,Company\n" + rows)
    with pytest.raises(InputFileError) as refused:
        inspect_file(path)
    assert str(refused.value).startswith(f"{path}: ")
    message = str(refused.value).removeprefix(f"{path}: ")  # the temporary folder's name may hold "415"
    assert f"line 2, read as the header, has {kind}" in message and f"in column {column}: it is a data row" in message
    assert "Ann" not in message and "VIP" not in message and "415" not in message and "@" not in message


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Ana,Garcia,Acme\nJo,Li,Li Ltd\n", "a person's name in column 1"),
        ("Garcia,Ana,Spain\nLi,Jo,France\n", "a person's name in column 2"),
        ("Acme Ltd,https://acme.example,Spain,Sales\nInitech Inc,https://initech.example,France,IT\n", "a company"),
        ("17,4200.5,2021-03-04\n18,10.0,2022-01-01\n", "a number in column 1"),
    ],
)
def test_a_file_without_a_header_row_is_refused_without_its_values(tmp_path: Path, text: str, found: str) -> None:
    """Without emails or phones the first person's row passed as the header: her name became the import's column
    names (imports.mapping, custom-field names), where privacy export and erasure do not look."""
    path = _write(tmp_path / "leads.csv", text)
    with pytest.raises(InputFileError) as refused:
        inspect_file(path)
    assert str(refused.value).startswith(f"{path}: ")
    # the file's path is left out: pytest's temporary folders are numbered (pytest-17), which read as a value
    message = str(refused.value).removeprefix(f"{path}: ")
    assert f"line 1, read as the header, looks like a data row ({found}" in message
    assert "header row missing? add one naming every column" in message
    for value in ("Ana", "Garcia", "Acme", "Spain", "17", "acme.example"):
        assert value not in message


@pytest.mark.parametrize(
    "header",
    ["Name,Spain Office,Lead Score", "First,Last,Company", "Job Title,Account Owner,Country", "Email,Garcia,Notes"],
)
def test_a_header_of_unknown_or_known_names_is_kept(tmp_path: Path, header: str) -> None:
    path = _write(tmp_path / "leads.csv", header + "\nAna,Garcia,Acme\n")
    assert inspect_file(path).headers == tuple(header.split(","))


def test_column_names_like_years_or_numbers_are_not_taken_for_phones(tmp_path: Path) -> None:
    text = "Name,2023-2024,20240115,555-0100\nAnn,1,2,3\n"
    assert inspect_file(_write(tmp_path / "leads.csv", text)).headers == ("Name", "2023-2024", "20240115", "555-0100")


def test_wrong_field_count_is_a_row_problem_not_a_failure(tmp_path: Path) -> None:
    text = _csv([*ROWS, ["Too", "Many", "x@example.com", "extra"], ["Ann", "Lee", "ann@example.com"]])
    chunk = first_chunk(inspect_file(_write(tmp_path / "leads.csv", text)))
    assert [p.row_number for p in chunk.problems] == [4]
    assert chunk.problems[0].reason == "expected 3 fields, found 4"
    assert len(chunk.rows) == 3


def test_chunks_cover_every_record_once_and_resume_skips_committed_chunks() -> None:
    layout = inspect_file(DATABLIST / "customers-1000.csv")
    chunks = list(iter_chunks(layout, chunk_rows=300))
    assert [len(c.rows) for c in chunks] == [300, 300, 300, 100]
    resumed = list(iter_chunks(layout, chunk_rows=300, start_chunk=2))
    assert [c.index for c in resumed] == [2, 3]
    assert resumed[0].row_numbers == chunks[2].row_numbers


TRICKY = (
    'Notes:\r\nExported by someone, with a "quoted" note\r\n\r\n'
    "First Name,Last Name,Email,Notes\r\n"
    'Ana,Núñez,ana@example.es,"two\r\nlines"\r\n'
    "\r\n"
    "Bo,Li,bo@example.com\r\n"
    'Cy,"O""Neil",cy@example.com,"three\nline\nnote"\r\n'
    "Di,Ng,di@example.com,plain\r\n"
    "\r\n\r\n"
    "Ed,Ito,ed@example.com,last\r\n"
)


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 50])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_byte_ranges_read_exactly_what_the_sequential_reader_reads(
    tmp_path: Path, chunk_rows: int, encoding: str
) -> None:
    layout = inspect_file(
        _write(tmp_path / "tricky.csv", TRICKY.replace("ú", "u") if encoding == "cp1252" else TRICKY, encoding)
    )
    for start in range(3):
        ranges = chunk_ranges(layout, chunk_rows, start_chunk=start)
        assert ranges is not None
        expected = [_read(c) for c in iter_chunks(layout, chunk_rows, start)]
        assert [_read(read_range(r)) for r in ranges] == expected


@pytest.mark.parametrize(
    "path",
    [
        DATABLIST / "customers-1000.csv",
        EXPORTS / "apollo_accounts_export_no_owner.csv",
        EXPORTS / "salesforce_leads_sample_jp.csv",
    ],
    ids=lambda p: str(p.name),
)
def test_byte_ranges_of_real_files_match_the_sequential_reader(path: Path) -> None:
    layout = inspect_file(path)
    ranges = chunk_ranges(layout, chunk_rows=7)
    assert ranges is not None and sum(r.records for r in ranges) == layout.total_rows
    assert [_read(read_range(r)) for r in ranges] == [_read(c) for c in iter_chunks(layout, chunk_rows=7)]


def _random_field(rng: random.Random, delimiter: str) -> str:
    plain = rng.choice(["Ann", "Núñez", "", "ann@example.com", "+1 415 555 0123", "Lee, Jr.", "x" * 40])
    kind = rng.random()
    if kind < 0.6:
        return plain.replace(delimiter, " ")
    body = rng.choice([plain, "two\nlines", "two\r\nlines", 'say ""hi""', f"a{delimiter}b", "", '""', "\n"])
    if kind < 0.97:
        return f'"{body}"'
    # what Python's csv reads as literal quotes or as text after a closing quote
    return rng.choice(["5'11\"", 'ab"cd', ' "spaced"', '"quoted"tail', '""x'])


def _random_file(rng: random.Random, empty: random.Random) -> tuple[str, str]:
    """A file of ``rng``'s records, with lines of no or empty fields between them drawn from ``empty``."""
    delimiter = rng.choice([",", ";", "\t", "|"])
    newline = rng.choice(["\n", "\r\n"])
    lines = []
    if rng.random() < 0.3:
        lines += ["Notes:", rng.choice(['"Exported by someone, with a comma"', "Exported today", ""])]
    lines.append(delimiter.join(["First Name", "Last Name", "Email", "Notes"]))
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.15:
            lines.append("")
        if empty.random() < 0.1:  # no record, or one of empty fields, or one field of a delimiter
            lines.append(empty.choice([delimiter * 3, delimiter, '""', f'""{delimiter}""', f'"{delimiter}"']))
        width = rng.choice([4, 4, 4, 4, 3, 5])
        lines.append(delimiter.join(_random_field(rng, delimiter) for _ in range(width)))
    text = newline.join(lines) + rng.choice([newline, "", newline * 2])
    return text, rng.choice(["utf-8", "utf-8-sig", "utf-8"])


@pytest.mark.parametrize("block_bytes", [3, 64, None], ids=["3-byte blocks", "64-byte blocks", "default blocks"])
def test_record_lines_found_in_the_bytes_agree_with_the_csv_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int | None
) -> None:
    """inspect_file finds records in the raw bytes (quote parity) where it can; whatever the quoting, the records,
    their line numbers and the header must be exactly those Python's csv reader sees, also when quoted fields and
    line ends straddle the blocks the file is read in."""
    if block_bytes is not None:
        monkeypatch.setattr(csvfile, "_BLOCK_BYTES", block_bytes)
    rng, empty = random.Random(20261129), random.Random(20261201)
    by_scan = by_parse = 0
    for case in range(400):
        text, encoding = _random_file(rng, empty)
        path = _write(tmp_path / f"case{case}.csv", text, encoding)
        try:
            layout = inspect_file(path)
        except InputFileError:
            continue  # e.g. an empty header name: refused the same way whichever path read it
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=layout.delimiter)
        records: list[tuple[int, list[str]]] = []
        line = 1
        for record in reader:
            if any(record):  # neither an empty line nor one of empty fields
                records.append((line, record))
            line = 1 + reader.line_num
        header_line, headers = records[layout.skip_records]
        data_lines = [line for line, _ in records[layout.skip_records + 1 :]]
        assert (layout.header_line, layout.headers) == (header_line, tuple(h.strip() for h in headers)), text
        assert layout.total_rows == len(data_lines), text
        assert layout.record_lines is not None and list(layout.record_lines) == data_lines, text
        chunks = list(iter_chunks(layout, chunk_rows=3))
        ranges = chunk_ranges(layout, chunk_rows=3)
        assert ranges is not None
        assert [_read(read_range(r)) for r in ranges] == [_read(c) for c in chunks], text
        by_scan += layout.plain_quoting
        by_parse += not layout.plain_quoting
    assert by_scan > 50 and by_parse > 50  # both ways of finding the records were put to the test


def test_plainly_quoted_chunks_are_parsed_by_arrow_and_misfits_by_csv_with_their_lines(tmp_path: Path) -> None:
    text = 'Name,Email,Notes\nAnn,ann@example.com,"two\r\nlines"\n\nBo,bo@example.com,"say ""hi"""\n'
    layout = inspect_file(_write(tmp_path / "plain.csv", text))
    (plain,) = chunk_ranges(layout, chunk_rows=10) or []
    raw = read_range(plain)
    assert raw.columns is not None and raw.row_numbers == [2, 5]
    assert _read(raw)[2] == [["Ann", "ann@example.com", "two\r\nlines"], ["Bo", "bo@example.com", 'say "hi"']]

    ragged = _write(tmp_path / "ragged.csv", text + "Cy,cy@example.com\n")
    (chunk,) = chunk_ranges(inspect_file(ragged), chunk_rows=10) or []
    raw = read_range(chunk)
    assert raw.columns is None and raw.row_numbers == [2, 5]
    assert [(p.row_number, p.reason) for p in raw.problems] == [(6, "expected 3 fields, found 2")]


@pytest.mark.parametrize("notes", ["plain", 'a "quoted" note'], ids=["found in the bytes", "parsed"])
def test_lines_of_delimiters_only_are_skipped_like_blank_lines(tmp_path: Path, notes: str) -> None:
    """Excel writes ",,,," for every row below the data whose cells were once formatted: no record, no error, in
    the count, the chunks and their lines, whichever way the records are found."""
    text = f"Name,Email,Notes\nAnn,ann@example.com,{notes}\n,,\r\n\nBo,bo@example.com,x\n,,\n,,\n"
    layout = inspect_file(_write(tmp_path / "excel.csv", text))
    assert layout.plain_quoting == (notes == "plain") and layout.total_rows == 2
    rows = [["Ann", "ann@example.com", notes], ["Bo", "bo@example.com", "x"]]
    raws = [*iter_chunks(layout, chunk_rows=10), *map(read_range, chunk_ranges(layout, chunk_rows=10) or [])]
    assert len(raws) == 2  # one chunk read sequentially, one by its byte range
    for raw in raws:
        assert _read(raw) == (0, [2, 5], rows, [])
    assert [_read(read_range(r))[1] for r in chunk_ranges(layout, chunk_rows=1) or []] == [[2], [5]]


def test_a_file_with_lone_carriage_returns_is_read_sequentially(tmp_path: Path) -> None:
    text = _csv(ROWS, newline="\r\n") + 'Al,"Old\rMac",al@example.com\r\n'
    layout = inspect_file(_write(tmp_path / "mixed.csv", text))
    assert chunk_ranges(layout, chunk_rows=1) is None
    rows = [c.rows for c in iter_chunks(layout, chunk_rows=1)]
    assert rows == [[ROWS[1]], [ROWS[2]], [["Al", "Old\rMac", "al@example.com"]]]


def test_a_file_changed_after_inspection_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "leads.csv", _csv(ROWS))
    layout = inspect_file(path)
    ranges = chunk_ranges(layout, chunk_rows=1)
    assert ranges is not None
    path.write_text(_csv([ROWS[0], ["Only", "One", "row\nwith,a,break"], ROWS[2]]), encoding="utf-8")
    with pytest.raises(InputFileError, match="changed while it was imported"):
        read_range(ranges[0])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"First Name,Last Name,Email\n", "only a header row"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        (b"Email,Email\nann@example.com,ann@example.org\n", "duplicate header name 'Email'"),
        (b"Email,,Phone\na@example.com,x,1\n", "header column 2 has no name"),
    ],
)
def test_files_that_cannot_be_imported_get_one_line_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError) as info:
        inspect_file(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_huge_field_refuses_the_file_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("Email,Notes\na@example.com,ok\nb@example.com," + "x" * (10 * 1024 * 1024) + "\n")
    with pytest.raises(InputFileError) as info:
        inspect_file(path)
    assert "line 3" in str(info.value)
    assert f"{MAX_FIELD_BYTES:,}" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        inspect_file(tmp_path / "nope.csv")


def test_directory_and_compressed_files_are_refused_saying_what_they_are(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="is a directory, not a file"):
        inspect_file(tmp_path)
    with pytest.raises(InputFileError, match="is a directory, not a file"):
        csvfile.file_sha256(tmp_path)
    packed = tmp_path / "leads.csv.gz"
    packed.write_bytes(gzip.compress(_csv(ROWS).encode()))
    with pytest.raises(InputFileError, match="gzip-compressed, not CSV text; decompress it first"):
        inspect_file(packed)
    zipped = tmp_path / "leads.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("leads.csv", _csv(ROWS))
    with pytest.raises(InputFileError, match="ZIP archive or an Excel workbook"):
        inspect_file(zipped)
    # an .xls starts with the OLE2 compound file signature, then sectors padded with NUL bytes
    legacy = tmp_path / "leads.xls"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"Workbook" + bytes(8))
    with pytest.raises(InputFileError, match=r"Excel 97-2003 workbook \(\.xls\).*save the sheet as CSV UTF-8"):
        inspect_file(legacy)


def test_huge_field_error_says_fields_are_limited_to_1_mb(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("Email,Notes\na@example.com,ok\nb@example.com," + "x" * (MAX_FIELD_BYTES + 10) + "\n")
    with pytest.raises(InputFileError) as info:
        inspect_file(path)
    assert "line 3: a field is longer than 1,000,000 characters (fields are limited to 1 MB" in str(info.value)
    assert "field larger than field limit" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('Email,Notes\nu1@x.com,"unterminated\nu2@x.com,fine\n', 2),  # found in the bytes
        ('Email,Notes\r\nu1@x.com,"a ""quoted"" word\r\nstill open\r\nu2@x.com,fine', 2),  # "" pairs inside
        ('Email,Notes\nu1@x.com,"closed"\nu2@x.com,"two\nlines",x,"open\nu3@x.com,fine\n', 4),
        ('Email,Notes\nu1@x.com,5\'11"\nu2@x.com,"open\n', 3),  # a literal quote: parsed, not scanned
        ('Email,Notes\nu1@x.com,5\'11"\nu2@x.com,"two\nlines","open\nu3\n', 4),
        ('Email,Notes\r\nu1@x.com,"open\rwith a lone CR\r\nu2@x.com,fine\r\n', 2),  # parsed: lone CR
        ('Email,"Notes\nu1@x.com,fine\n', 1),  # in the header
    ],
)
def test_a_quote_never_closed_refuses_the_file_naming_its_line(tmp_path: Path, text: str, line: int) -> None:
    for encoding in ("utf-8", "utf-16"):  # utf-16 is always parsed
        path = _write(tmp_path / "unclosed.csv", text, encoding)
        with pytest.raises(InputFileError) as info:
            inspect_file(path)
        assert str(info.value) == (
            f"{path}: line {line}: a quote opens a field that is never closed, so the rest of the file would be "
            'read as that one field; close the quoted field (a quote inside one is written "") or remove the '
            "quote, then retry"
        )


@pytest.mark.parametrize("block_bytes", [3, 64, None], ids=["3-byte blocks", "64-byte blocks", "default blocks"])
def test_a_quote_left_open_at_the_end_of_any_file_is_found_on_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int | None
) -> None:
    """Whatever quoting comes before it, and whichever way the records are found, a last record whose quoted field
    never closes is refused with the line it starts on; the same files without it are not."""
    if block_bytes is not None:
        monkeypatch.setattr(csvfile, "_BLOCK_BYTES", block_bytes)
    rng, empty = random.Random(20261130), random.Random(20261202)
    tested = 0
    for case in range(200):
        text, encoding = _random_file(rng, empty)
        try:
            inspect_file(_write(tmp_path / f"case{case}.csv", text, encoding))
        except InputFileError:
            continue  # refused for its header already
        newline = "\r\n" if "\r\n" in text else "\n"
        text = text if text.endswith("\n") else text + newline
        line = text.count("\n") + 1
        delimiter = inspect_file(tmp_path / f"case{case}.csv").delimiter
        opened = text + delimiter.join(["Zed", "Ng", f'"never closed{newline}more{delimiter}text{newline}'])
        with pytest.raises(InputFileError, match=f"line {line}: a quote opens a field that is never closed"):
            inspect_file(_write(tmp_path / f"open{case}.csv", opened, encoding))
        tested += 1
    assert tested > 150


def test_a_file_with_classic_mac_line_ends_is_read(tmp_path: Path) -> None:
    """Excel for Mac's "CSV (Macintosh)" ends every line with a lone CR: no LF in the whole file."""
    layout = inspect_file(_write(tmp_path / "mac.csv", _csv(ROWS, newline="\r")))
    assert (layout.headers, layout.total_rows) == (tuple(ROWS[0]), 2)
    assert [c.rows for c in iter_chunks(layout, chunk_rows=10)] == [ROWS[1:]]


def test_a_delimiter_after_every_line_makes_a_named_column_not_a_refusal(tmp_path: Path) -> None:
    """Some exports end every line, the header's too, with the delimiter: an unnamed last column, empty."""
    text = "".join(";".join(row) + ";\r\n" for row in ROWS)
    layout = inspect_file(_write(tmp_path / "trailing.csv", text))
    assert (layout.delimiter, layout.headers) == (";", (*ROWS[0], "Column 4"))
    assert [c.rows for c in iter_chunks(layout, chunk_rows=10)] == [[[*row, ""] for row in ROWS[1:]]]


def test_fields_quoted_with_apostrophes_are_refused_before_anything_is_imported(tmp_path: Path) -> None:
    """LibreOffice can quote with ' instead of ": read as CSV, every value kept its apostrophes ("'Zoë'") and a
    quoted value with the delimiter in it was split into two fields."""
    rows = [*ROWS, ["Ann", "Lee, Jr.", "ann@example.com"]]
    buffer = io.StringIO()
    csv.writer(buffer, quotechar="'", quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    with pytest.raises(InputFileError, match="line 1: the fields are quoted with apostrophes"):
        inspect_file(_write(tmp_path / "libreoffice.csv", buffer.getvalue()))
    # an apostrophe in a name or in one header is no quoting
    layout = inspect_file(_write(tmp_path / "names.csv", "'Name',Email\nO'Brien,ob@example.com\n"))
    assert layout.headers == ("'Name'", "Email")


def test_a_reports_footer_lines_are_rejected_saying_they_are_text_not_leads(tmp_path: Path) -> None:
    """A Salesforce report ends with totals, a confidentiality note and a copyright line: one field each."""
    footer = '\n"Grand Totals (2 records)"\n\n"Confidential Information - Do Not Distribute"\n'
    layout = inspect_file(_write(tmp_path / "report.csv", _csv(ROWS) + footer))
    (chunk,) = iter_chunks(layout, chunk_rows=10)
    assert chunk.rows == ROWS[1:]
    reason = "expected 3 fields, found 1: a line of text, not a lead (a report's title, totals or footer line?)"
    assert [(p.row_number, p.value, p.reason) for p in chunk.problems] == [
        (5, "Grand Totals (2 records)", reason),
        (7, "Confidential Information - Do Not Distribute", reason),
    ]
