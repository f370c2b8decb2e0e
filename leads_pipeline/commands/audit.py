"""``leads audit``: the append-only audit log (exports, shares, deletions, merges, bulk actions, privacy requests,
retention runs), oldest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from leads_pipeline.commands.common import Table, acting_user, environment, print_json, print_table, run_or_fail
from leads_pipeline.lib.errors import ConfigurationError

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``7d``/``24h``/``30m``/``2w`` before now, or an ISO date or date-time (UTC unless it names a zone)."""
    relative = _RELATIVE.match(text.strip().lower())
    if relative:
        amount, unit = relative.groups()
        try:
            return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
        except OverflowError:  # was a traceback
            raise ConfigurationError(
                f"--since {text!r}: reaches back before the year 1; leave --since out to see every entry"
            ) from None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(
            f"--since {text!r}: expected a duration like 7d, 24h, 30m, 2w or a date like 2026-01-31[T12:00]"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def audit_command(
    since: Annotated[str | None, typer.Option(help="Only entries after this: 7d, 24h, 30m or an ISO date.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, or a family of them (list, leads, privacy ...).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000, help="At most this many entries (the newest).")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the audit log: who did what, to which object, when. An owner of every list (or a privacy officer)
    sees every entry; others their own and those about the lists they can read."""
    from leads_pipeline.lib.store import audit
    from leads_pipeline.lib.store.db import connect

    start = run_or_fail(lambda: parse_since(since)) if since else None
    env = run_or_fail(environment)

    def read() -> list[dict[str, Any]]:
        with connect(env.database_url) as conn:
            found = audit.entries(conn, since=start, action=action, reader=acting_user())
        return found[-limit:]

    rows = run_or_fail(read)
    if as_json:
        print_json([{**row, "at": row["at"].isoformat()} for row in rows])
        return
    table = Table("id", "at (UTC)", "actor", "action", "object", "details")
    lines = []
    for row in rows:
        details = ", ".join(f"{k}={_short(v)}" for k, v in row["details"].items())
        at = row["at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(row["id"]), at, row["actor"], row["action"], row["object"], details)
        # narrower than the table (80 columns: a pipe, cron's mail) the object and details were cut to a few
        # letters: each entry takes two lines, every value whole
        lines.append((f"{row['id']}  {at} {row['actor']} {row['action']} {row['object']}", details or "no details"))
    print_table(table, lines)


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) > 5:
        return f"[{', '.join(map(str, value[:5]))}, ... {len(value)} in all]"
    return str(value)
