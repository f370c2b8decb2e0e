"""What every ``leads`` sub-command shares: the consoles, one-line errors, the prepared environment, the actor."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from leads_pipeline.lib.errors import LeadsError
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
    """The database (embedded unless DATABASE_URL is set) with every migration applied."""
    from leads_pipeline.lib.store.migrations import apply_migrations

    env = prepare_environment()
    apply_migrations(env.database_url)
    return env


def acting_user() -> str:
    """Who runs the command: ``LEADS_USER``, else the OS user."""
    return os.environ.get("LEADS_USER") or getpass.getuser()


def print_json(document: Any) -> None:
    """Write a JSON document to stdout (dates and decimals as strings)."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
