"""An import end to end with generated values, into the embedded PostgreSQL: what a file holds in a text field
(quotes, delimiters, line breaks, backslashes and COPY's own markers such as ``\\.`` and ``\\N``, invisible and
non-ASCII characters) is stored as the import's cleaning leaves it, in a mapped column and in a custom field alike
(whose line breaks it keeps). One database for all the examples, a list each."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads_pipeline.lib import normalize as norm
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline_tests.support import import_text, sql_rows

PIECES = [*"\\.\",;|\n\r\t \u00a0é'=+-@ab1", "\\.", "\n\\.\n", "\r\n", "\\N", "NULL", "\x01", "\u2028", "\ufeff"]
PIECES += ["\U0001f600", "\x85", "\u200b", "'+1"]
VALUES = st.lists(st.sampled_from(PIECES), max_size=5).map("".join)
_lists = itertools.count()


def _cleaned(value: str, field: str) -> str | None:
    """The value as the import cleans a column of ``field`` (a custom one keeps its line breaks)."""
    column = pa.array([value], pa.large_string())
    cleaned = norm.clean_arrow(column, pd.RangeIndex(1), keep_lines=norm.keeps_lines(field)).iloc[0]
    return None if pd.isna(cleaned) else str(cleaned)


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])  # one database
@given(st.lists(st.tuples(VALUES, VALUES, VALUES), min_size=1, max_size=4))
def test_text_fields_are_stored_as_cleaned(database_url: str, tmp_path: Path, rows: list[tuple[str, str, str]]) -> None:
    name = f"props{next(_lists)}"
    with connect(database_url) as conn:
        create_list(conn, name, owner="tester")
    written = io.StringIO(newline="")
    writer = csv.writer(written, lineterminator="\r\n")
    writer.writerow(["Email", "Company", "Title", "Colour"])
    writer.writerows([f"lead{i}@example.com", *row] for i, row in enumerate(rows))
    import_text(database_url, tmp_path / f"{name}.csv", written.getvalue(), name)
    stored = sql_rows(
        database_url,
        "SELECT l.company, l.title, l.custom ->> 'Colour' AS colour FROM leads l JOIN lists s ON s.id = l.list_id"
        " WHERE s.name = %s ORDER BY l.id",
        name,
    )
    fields = ("company", "title", "custom.Colour")
    expected = [tuple(_cleaned(value, field) for value, field in zip(row, fields, strict=True)) for row in rows]
    assert [(r["company"], r["title"], r["colour"]) for r in stored] == expected
