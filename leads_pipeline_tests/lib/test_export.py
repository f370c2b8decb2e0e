"""``lib/export.py``: the one CSV writer for people, formula-safe in any spreadsheet locale."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads_pipeline.lib.export import _FORMULA_AFTER, safe_cell, write_csv, written_whole


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+4915112345678", "'+4915112345678"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\r=1", "'\r'=1"),
        (' "=1+1', "' \"=1+1"),
        # Excel with ";" as list separator splits here and runs what follows: neutralized after the separator
        ("a;=1+1", "a;'=1+1"),
        ("a; =1+1", "a;' =1+1"),
        ("a\t@SUM(A1)", "a\t'@SUM(A1)"),
        ("Sales, -EMEA", "Sales,' -EMEA"),
        ('x,"=HYPERLINK(1)', "x,'\"=HYPERLINK(1)"),
        ("line one\n=cmd", "line one\n'=cmd"),
        ("a;b, c\td", "a;b, c\td"),
        ("Ana García-López", "Ana García-López"),
        ("ann@example.com", "ann@example.com"),
        (None, ""),
        ("", ""),
        ("\t", "'\t"),
        (12, "12"),
        (Decimal("-1500.50"), "'-1500.50"),
        (datetime(2026, 11, 3, 9, 30, tzinfo=UTC), "2026-11-03T09:30:00+00:00"),
    ],
)
def test_safe_cell_neutralizes_a_formula_at_the_start_and_after_every_separator(value: Any, expected: str) -> None:
    assert safe_cell(value) == expected


@given(st.text(alphabet=st.sampled_from("ab =+-@;,\t\r\n\"' "), max_size=12) | st.text(max_size=12))
def test_safe_cell_skips_the_pattern_only_where_it_would_change_nothing(text: str) -> None:
    """Text without a character that starts a formula skips the pattern (the time of `bulk export`): the cell is
    what the pattern on every cell gave."""
    patterned = _FORMULA_AFTER.sub(r"\1'", text)
    assert safe_cell(text) == ("'" + patterned if patterned.startswith(("\t", "\r")) else patterned)


def test_write_csv_quotes_every_cell_and_neutralizes_header_and_cells() -> None:
    """A comma-separated reader sees each cell whole (quoted), a semicolon-separated spreadsheet that splits
    a cell at its ";" finds no formula in the pieces."""
    out = io.StringIO()
    written = write_csv(out, ["id", "=name"], [[1, "a;=1+1"], [2, None]])
    assert written == 2
    text = out.getvalue()
    assert text.splitlines() == ['"id","\'=name"', '"1","a;\'=1+1"', '"2",""']
    assert list(csv.reader(io.StringIO(text))) == [["id", "'=name"], ["1", "a;'=1+1"], ["2", ""]]
    for line in text.splitlines():  # what Excel in a ";" locale makes of each line
        assert not any(piece.strip().strip('"').startswith(("=", "+", "-", "@")) for piece in line.split(";"))


def test_an_export_does_not_write_through_a_link_at_its_scratch_name(tmp_path: Path) -> None:
    """In a folder others may write, a link made at the name of the scratch file (``.NAME.PID.partial``, the PID
    guessable) was opened as it was: the export overwrote the file the link names, the exporter's own."""
    victim = tmp_path / "bashrc"
    victim.write_text("mine\n", encoding="utf-8")
    target = tmp_path / "q3.csv"
    target.with_name(f".q3.csv.{os.getpid()}.partial").symlink_to(victim)
    with written_whole(target, encoding="utf-8") as out:
        out.write("id\n")
    assert victim.read_text(encoding="utf-8") == "mine\n"
    assert target.read_text(encoding="utf-8") == "id\n" and not target.is_symlink()
