"""Writing CSV for people to open in a spreadsheet, safely: no cell can run as a formula.

A cell beginning with ``=``, ``+``, ``-``, ``@`` (after spaces or quotes, too) or with a tab or carriage return
(some spreadsheets skip those before reading a formula) gets a leading apostrophe, the OWASP recommendation
against CSV injection: the text shows as typed and nothing is evaluated. Phone numbers in E.164 therefore read
``'+4915...`` in the file. Quoting every cell is not enough: Excel set to ``;`` as list separator (most of
Europe) splits ``"a;=1+1"`` at the semicolon, quotes or not, and runs ``=1+1``; so a formula start after a
separator (``;``, ``,``, tab, a line break) gets the apostrophe as well (``a;'=1+1``). Every cell is quoted, so
a comma-separated reader sees the cell whole.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TextIO

from leads_pipeline.lib.errors import PermanentError

# a separator some spreadsheet may split at, followed (after spaces or quotes) by what starts a formula
_FORMULA_AFTER: Final = re.compile(r'(^|[,;\t\r\n])(?=[\s"]*[=+\-@])')
BOOKKEEPING_COLUMNS: Final = ("id", "stage", "score", "created_at", "list", "tags")
"""The columns ``leads bulk export`` writes besides the lead's fields and custom fields: the store's own, which an
import of the file back leaves out (``mapping.left_out_columns``)."""


def safe_cell(value: Any) -> str:
    """The value as CSV text, with an apostrophe wherever a spreadsheet could start reading a formula. Text
    without any character that starts one skips the pattern: most cells (names, companies) have none, and the
    pattern on every cell was a third of the time of `bulk export`."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    if not text:
        return text
    if "=" in text or "+" in text or "-" in text or "@" in text:
        text = _FORMULA_AFTER.sub(r"\1'", text)
    return "'" + text if text[0] in "\t\r" else text


def write_csv(out: TextIO, header: list[str], rows: Iterable[Iterable[Any]]) -> int:
    """The one way the project writes CSV for people: every cell through ``safe_cell`` and quoted.
    Returns the number of rows written (without the header)."""
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow([safe_cell(c) for c in header])
    written = 0
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        written += 1
    return written


def write_leads_csv(out: TextIO, rows: Iterable[dict[str, Any]], columns: list[str]) -> int:
    """Write a header and one line per lead; ``custom.NAME`` columns read the lead's custom fields, and a list
    (the tags) is one cell, its items between commas ("EMEA, hot"). Returns the number of leads written."""

    named = [(column, column[7:] if column.startswith("custom.") else None) for column in columns]

    def cells(row: dict[str, Any]) -> list[Any]:
        custom = row.get("custom") or {}
        values = [row.get(column) if name is None else custom.get(name) for column, name in named]
        return [", ".join(v) if isinstance(v, list) else v for v in values]

    return write_csv(out, columns, (cells(row) for row in rows))


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user counts: it cannot be signalled)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_scratch(path: Path) -> None:
    """Remove the scratch files a killed export to ``path`` left beside it (``.NAME.PID.partial`` of a process
    that no longer runs): a SIGKILL or a power cut skips the cleanup, and the rows written so far stayed there,
    hidden, for good. An export still running keeps its file; a reused PID only keeps a stale one longer. Best
    effort: a directory that can be written but not listed only keeps them."""
    prefix, suffix = f".{path.name}.", ".partial"
    with contextlib.suppress(OSError):
        for scratch in path.parent.iterdir():
            name, pid = scratch.name, scratch.name[len(prefix) : -len(suffix)]
            ours = name.startswith(prefix) and name.endswith(suffix) and pid.isdigit()
            if ours and not _alive(int(pid)):
                scratch.unlink(missing_ok=True)


@contextlib.contextmanager
def written_whole(path: Path, *, encoding: str, newline: str | None = None, errors: str = "strict") -> Iterator[TextIO]:
    """A text file to write that appears at ``path`` only once the block ends without an error: it is written
    beside it, flushed to disk and renamed into place. A CSV has no end marker, so an export killed or failing
    half-way must not leave a truncated file there that opens as a complete one; the file an earlier export left
    at ``path`` stays whole until the new one is. A path that is not a regular file (``/dev/stdout``, a pipe)
    is written directly: it cannot be renamed onto.

    A new file is readable by its owner only (0600): exports hold personal data, and the umask's 0644 let every
    account on a shared host read them; an existing file keeps its mode. A path that cannot be written is a
    ``PermanentError`` naming it (a missing directory ended the command with no message)."""
    if path.is_dir():  # opened as a file, it was an IsADirectoryError traceback
        raise PermanentError(f"cannot write {path}: it is a directory; give a file name in it")
    if path.exists() and not path.is_file():
        with path.open("w", encoding=encoding, newline=newline, errors=errors) as handle:
            yield handle
        return
    if not path.parent.is_dir():
        raise PermanentError(f"cannot write {path}: the directory {path.parent} does not exist")
    _remove_stale_scratch(path)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        # a new file, never one found there: in a folder others may write (/tmp, a shared drive), a link someone
        # made at this name (``.q3.csv.4242.partial -> ~/.bashrc``) was followed and the file it names overwritten
        scratch.unlink(missing_ok=True)
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise PermanentError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with open(descriptor, "w", encoding=encoding, newline=newline, errors=errors) as handle:
            if path.exists():  # a file someone made private stays private (it was overwritten in place before)
                shutil.copymode(path, scratch)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
