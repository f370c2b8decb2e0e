"""What every ``leads`` sub-command shares: the consoles, one-line errors, the prepared environment, the actor."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import date, time
from decimal import Decimal
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console

from leads_pipeline.lib.errors import ConfigurationError, LeadsError
from leads_pipeline.lib.runtime import Environment, prepare_environment

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")


def fail(message: str) -> NoReturn:
    """Print one red line on stderr and exit with code 1."""
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def run_or_fail(action: Callable[[], T]) -> T:
    """Run a command body, turning the project's errors into one line and exit code 1."""
    try:
        return action()
    except LeadsError as exc:
        fail(str(exc))


def environment() -> Environment:
    """The database (embedded unless DATABASE_URL is set) with every migration applied. A wrong DATABASE_URL is
    one line naming it without its password: psycopg's errors came as a traceback, and quoted a URL it could not
    parse whole, password included."""
    import psycopg

    from leads_pipeline.lib.store.migrations import apply_migrations

    env = prepare_environment()
    where = f"{'the embedded server' if env.embedded else 'DATABASE_URL'} ({url_without_password(env.database_url)})"
    if urlsplit(env.database_url).scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ConfigurationError(f"{where}: expected a postgresql://user:password@host:port/database URL")
    try:
        apply_migrations(env.database_url)
    except psycopg.OperationalError as exc:
        password = urlsplit(env.database_url).password
        reason = " ".join((str(exc).replace(password, "***") if password else str(exc)).split())
        raise ConfigurationError(f"cannot use the database in {where}: {reason}") from None
    return env


def url_without_password(url: str) -> str:
    """``url`` with ``***`` for its password, to name a server in an error."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rsplit('@', 1)[-1]}"))


def acting_user() -> str:
    """Who runs the command: ``LEADS_USER``, else the OS user."""
    return os.environ.get("LEADS_USER") or getpass.getuser()


def json_text(document: Any) -> str:
    """The one JSON encoding of every ``--json`` output and JSON file: numbers as numbers, whatever their type.

    PostgreSQL ``numeric`` columns (annual revenue, costs) come as ``Decimal``, which were written as strings
    (``"2000000.00"``) next to integers written as numbers; a script reading the output had to know which was
    which. A whole amount is an integer, any other a float (exact to 15 significant digits, far beyond any
    amount held), whether it was a ``Decimal`` or a Python float (credits are summed as floats and came out as
    ``19.0``); dates and times are ISO 8601 text (``2026-11-03T09:30:00+00:00``, as the outputs that format
    their own times write them), anything else a string."""
    return json.dumps(_whole_numbers(document), indent=2, default=_json_value) + "\n"


def _whole_numbers(value: Any) -> Any:
    """The document with each whole float as an integer (``json.dumps`` writes floats without asking)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_whole_numbers(item) for item in value]
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def require_every_list(database_url: str, action: str) -> None:
    """Refuse an instance-wide action (it reaches every list: a global retention policy, the encryption keys,
    the Do-Not-Call registry) unless the acting user owns every list or is a privacy officer; the project has
    no other administrator role (``access.require_every_list``)."""
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store.db import connect

    with connect(database_url) as conn:
        access.require_every_list(conn, acting_user(), action)


def print_json(document: Any) -> None:
    """Write a JSON document to stdout (``json_text``)."""
    sys.stdout.write(json_text(document))
