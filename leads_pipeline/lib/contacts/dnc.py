"""Do-Not-Call list files: the FTC's formats and plain lists of numbers, read as E.164 numbers.

The FTC distributes the National DNC Registry per area code as text with one "area code,number" line per
entry (``201,5550123``), as full lists and as change lists (additions or deletions since the last download).
A plain list has one number per line in any common spelling. Lines that are not a phone number are counted
and the first few reported with their line numbers, never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from leads_pipeline.lib.contacts.phones import analyze
from leads_pipeline.lib.errors import InputFileError

DncFormat = Literal["ftc", "plain"]
_FTC_LINE = re.compile(r"^\s*\"?(\d{3})\"?\s*,\s*\"?(\d{3})[-\s]?(\d{4})\"?\s*$")
_SHOWN_PROBLEMS = 5
_NUMBER_LIKE = re.compile(r"[\d\s\"'+().,/-]+")
"""What a line of a DNC file holds: digits and the punctuation numbers are written with."""
_SHOWN_CHARACTERS = 20


@dataclass
class DncParse:
    numbers: set[str] = field(default_factory=set)
    rejected: int = 0
    problems: list[str] = field(default_factory=list)


def read_dnc_file(path: Path, fmt: DncFormat, default_region: str = "US") -> DncParse:
    """The numbers of a DNC file; raises ``InputFileError`` when it cannot be read or holds no number at all."""
    result = DncParse()
    for line_number, line in _lines(path):
        text = line.strip()
        if not text or text.startswith("#") or (line_number == 1 and not any(c.isdigit() for c in text)):
            continue  # blank, comment, or a header row
        number = _ftc_number(text) if fmt == "ftc" else _plain_number(text, default_region)
        if number is None:
            result.rejected += 1
            if len(result.problems) < _SHOWN_PROBLEMS:
                expected = "'area code,number' like 201,5550123" if fmt == "ftc" else "a phone number"
                result.problems.append(f"{path}:{line_number}: expected {expected}, found {_shown(text)}")
            continue
        result.numbers.add(number)
    if not result.numbers:
        detail = "; ".join(result.problems) or "the file is empty"
        raise InputFileError(path, f"no phone number found ({detail}); check --format ({fmt})")
    return result


def _shown(text: str) -> str:
    """A rejected line as an error may show it: digits and the separators of numbers, at most 20 of them; any other
    line by its length only. The file can be anything: a symlink to ``$LEADS_HOME/encryption.keys`` had its key
    line printed in the error (40 characters of it)."""
    if _NUMBER_LIKE.fullmatch(text):
        return repr(text) if len(text) <= _SHOWN_CHARACTERS else f"{text[:_SHOWN_CHARACTERS]!r}..."
    return f"a line of {len(text)} characters that is not a number (not shown)"


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            yield from enumerate(handle, start=1)
    except OSError as error:
        raise InputFileError(path, f"cannot read the DNC file ({error.strerror}); check the path") from error


def _ftc_number(text: str) -> str | None:
    match = _FTC_LINE.match(text)
    return f"+1{match.group(1)}{match.group(2)}{match.group(3)}" if match else None


def _plain_number(text: str, default_region: str) -> str | None:
    info = analyze(text, None, default_region)
    return info.e164 if info.e164 and (info.valid or len(info.e164) >= 9) else None
