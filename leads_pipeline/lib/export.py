"""Writing leads to CSV for spreadsheets, safely: a cell that a spreadsheet would run as a formula is neutralized.

Cells beginning with ``=``, ``+``, ``-``, ``@`` (and tab or carriage return, which some spreadsheets skip before
reading a formula) get a leading apostrophe, the OWASP recommendation against CSV injection: the text shows as
typed and nothing is evaluated. Phone numbers in E.164 therefore read ``'+4915...`` in the file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, TextIO

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
BOOKKEEPING_COLUMNS: Final = ("id", "stage", "score", "created_at", "list", "tags")
"""The columns ``leads bulk export`` writes besides the lead's fields and custom fields: the store's own, which an
import of the file back leaves out (``mapping.left_out_columns``)."""


def safe_cell(value: Any) -> str:
    """The value as CSV text, with a leading apostrophe if a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_leads_csv(out: TextIO, rows: Iterable[dict[str, Any]], columns: list[str]) -> int:
    """Write a header and one line per lead; ``custom.NAME`` columns read the lead's custom fields.
    Returns the number of leads written."""
    writer = csv.writer(out)
    writer.writerow([safe_cell(c) for c in columns])
    written = 0
    for row in rows:
        custom = row.get("custom") or {}
        writer.writerow([safe_cell(custom.get(c[7:]) if c.startswith("custom.") else row.get(c)) for c in columns])
        written += 1
    return written


def custom_columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """``custom.NAME`` for every custom field of the rows, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row.get("custom") or {}:
            seen.setdefault(f"custom.{key}", None)
    return list(seen)
