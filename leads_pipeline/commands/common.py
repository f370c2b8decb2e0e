"""What every ``leads`` sub-command shares: the consoles, one-line errors, the prepared environment, the actor."""

from __future__ import annotations

import codecs
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar
from urllib.parse import unquote, urlsplit

import rich.table
import typer
from rich.console import Console, RenderableType
from rich.style import StyleType
from rich.text import Text

from leads_pipeline.lib.errors import ConfigurationError, LeadsError
from leads_pipeline.lib.runtime import (
    Environment,
    killed_server_processes,
    os_user,
    plain_postgres_url,
    prepare_environment,
)

_CONTROLS = {c: "?" for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\t\n\r"}


class TerminalConsole(Console):
    """A console that shows the control characters of the text it prints as ``?``. Lead values come from files
    and scraped profiles: an escape sequence in one (``\\x1b[2J``, an OSC 8 link hiding where it points) went
    to the terminal of whoever listed or showed the lead, which ran it (rich itself drops only BEL, BS, VT, FF
    and CR). The console's own colours are made after this, from its markup. Nor are emoji codes made emoji:
    the question before purging list ':fire: Fair' asked to remove list '🔥 Fair'."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(text.translate(_CONTROLS), **{**kwargs, "emoji": False})


class Table(rich.table.Table):
    """A table whose text cells are shown as written, not read as rich markup: a lead's company
    ``[link=https://evil.example]Acme[/link]`` showed as a link to that site named Acme (``[reverse]``,
    ``[blink]`` restyled the rows). Their control characters show as ``?``, as the consoles show them."""

    def add_row(
        self, *renderables: RenderableType | None, style: StyleType | None = None, end_section: bool = False
    ) -> None:
        cells = (Text(cell.translate(_CONTROLS)) if isinstance(cell, str) else cell for cell in renderables)
        super().add_row(*cells, style=style, end_section=end_section)


console = TerminalConsole()
errors = TerminalConsole(stderr=True)
T = TypeVar("T")


@contextmanager
def csv_stdout() -> Iterator[TextIO]:
    """Standard output for a CSV, in UTF-8 whatever the locale: a CSV redirected to a file is read back as UTF-8
    (``leads import`` does), as ``--out`` writes it. Under a Latin-1 or ASCII locale a name outside it (İlker,
    日本) stopped the output half-way with a UnicodeEncodeError."""
    sys.stdout.flush()
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    try:
        yield out
    finally:
        out.flush()
        out.detach()  # standard output stays open


def output_file(out: Path | None) -> Path | None:
    """The file ``--out`` names, or None for standard output: its default, and ``-`` as other tools read it. A
    script's ``--out -`` wrote a file named ``-`` in its working directory, and nothing to standard output."""
    return None if out is None or str(out) == "-" else out


def fail(message: str) -> NoReturn:
    """Print one red line on stderr and exit with code 1."""
    print_line(("error:", "red"), f" {message}", err=True)  # names as typed
    raise typer.Exit(code=1)


def confirmed(question: str) -> bool:
    """Ask ``question`` [y/N] on standard error; y or yes is yes. With no answer to read (standard input closed or
    at its end: a script, cron, CI), or Ctrl-C at the prompt, the answer is no: the caller then says what was not
    done and that --yes does it, where click's bare "Aborted!" said neither. Asked on standard output, the
    question went into what a script reads or a file it was redirected to: ``leads bulk delete ... --json >
    deleted.json`` waited for an answer to a question nobody saw, and the file began with it, which no JSON parser
    reads."""
    errors.print(f"{question} [y/N]: ", end="", markup=False, highlight=False, soft_wrap=True)
    try:
        answer = input()  # click's confirm writes the prompt's last character to standard output
    except (EOFError, KeyboardInterrupt):
        errors.print()  # the prompt's line ends before the caller's error line
        return False
    if not sys.stdin.isatty():  # a terminal shows the answer typed; a log (cron's mail) the answer read
        errors.print(answer, markup=False, highlight=False)
    return answer.strip().lower() in ("y", "yes")


def one_output(as_json: bool, as_csv: bool) -> None:
    """Refuse ``--json`` with ``--csv``: one of them was silently dropped (``leads search --json --csv`` printed
    JSON, yet audited a CSV export of the page)."""
    if as_json and as_csv:
        fail("--json and --csv: give one of them")


def run_or_fail(action: Callable[[], T]) -> T:
    """Run a command body, turning the project's errors, and the database going away under it, into one line
    and exit code 1."""
    try:
        return action()
    except LeadsError as exc:
        fail(str(exc))
    except Exception as exc:
        lost = connection_lost(exc)
        if lost is None:
            raise
        fail(database_went_away(lost))


def database_went_away(reason: str) -> str:
    """The one line of a command the database went away under, with the driver's ``reason``. When the embedded
    server's log says one of its processes was killed meanwhile (signal 9: the kernel's OOM killer, in a container
    at its memory limit), running the same command again as it was killed it again: the line says to give it more
    memory first."""
    killed = killed_server_processes()
    if killed:
        return (
            f"the database went away during the command ({_without_password(reason)}): the server's log says"
            f" {killed[-1].partition('LOG:')[2].strip()!r}, as the kernel kills the largest process when the memory"
            " of the machine or of its container runs out: give it more memory, then run the same command again;"
            " what it committed is kept, the rest is done then"
        )
    return (
        f"the database went away during the command ({_without_password(reason)}): once it is up again (`leads db"
        " start` for the embedded server), run the same command again; what it committed is kept, the rest is done"
        " then"
    )


LOST_CONNECTION_ERRORS = frozenset({"OperationalError", "AdminShutdown", "CrashShutdown", "CannotConnectNow"})
"""The names of psycopg's and psycopg2's errors of a lost connection, for a failure Dagster kept only as text (a
run's step failure): their specific errors (a lock timeout, a cancelled query) have names of their own."""


def connection_lost(exc: BaseException) -> str | None:
    """Why the connection to the database was lost, if that is what ``exc`` (or an error it came from) says;
    else None. The server stopped, restarted or ended the command's backend mid-way: psycopg's error (or
    psycopg2's, under Dagster's storage, with Dagster's own errors wrapped around it) was a traceback of up to
    600 lines. Not a lock timeout, a cancelled query or a full disk, which are errors of their own."""
    import psycopg

    psycopg2 = sys.modules.get("psycopg2")  # Dagster's storage connects through it (only loaded with Dagster)
    kinds: tuple[type[BaseException], ...] = (psycopg.OperationalError,)
    if psycopg2 is not None:
        kinds += (psycopg2.OperationalError,)
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, kinds):
            state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
            if state is None or state.startswith("08") or state.startswith("57P"):
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                return " ".join(first_line.split())
        error = error.__cause__ or error.__context__
    return None


def _without_password(text: str) -> str:
    """``text`` with the database's password (``DATABASE_URL``'s) as ``***``, should a driver quote it."""
    password = urlsplit(os.environ.get("DATABASE_URL", "")).password
    return text.replace(password, "***") if password else text


def environment(*, check_keys: bool = True) -> Environment:
    """The database (embedded unless DATABASE_URL is set) with every migration applied, used with the keys its
    values are sealed under (``require_database_keys``; not with ``check_keys`` False, for a restore, which
    checks them against the backup that replaces the database). A wrong DATABASE_URL is
    one line naming it without its password: psycopg's errors came as a traceback, and quoted a URL it could not
    parse whole, password included."""
    import psycopg

    from leads_pipeline.lib.store.migrations import apply_migrations, prepare_database

    env = prepare_environment()
    where = f"{'the embedded server' if env.embedded else 'DATABASE_URL'} ({url_without_password(env.database_url)})"
    if plain_postgres_url(env.database_url).partition("://")[0] not in ("postgresql", "postgres"):
        raise ConfigurationError(f"{where}: expected a postgresql://user:password@host:port/database URL")
    try:
        problem = _unparsed(env.database_url)
    except psycopg.ProgrammingError as exc:
        # Not the URL nor psycopg's text, which quote the password from where the URL stops making sense.
        problem = str(exc).split(":", 1)[0]
    if problem:
        raise ConfigurationError(
            f"DATABASE_URL is not a postgresql://user:password@host:port/database?parameter=value URL ({problem}):"
            " write the password's reserved characters percent-encoded (@ as %40, : as %3A, / as %2F, # as %23,"
            " ? as %3F, % as %25), and only libpq's parameters (sslmode, sslrootcert, connect_timeout,"
            " application_name, ...)"
        ) from None
    try:
        (prepare_database if check_keys else apply_migrations)(env.database_url)
    except psycopg.OperationalError as exc:
        password = urlsplit(env.database_url).password
        reason = " ".join((str(exc).replace(password, "***") if password else str(exc)).split())
        raise ConfigurationError(f"cannot use the database in {where}: {reason}") from None
    return env


def _unparsed(database_url: str) -> str | None:
    """Why libpq would read ``database_url`` otherwise than Python reads it (None when both agree). libpq ends
    the password at its first ``@`` and Python's URL parser at the last, Python ends the address at ``#`` or
    ``?``, and both end it at ``/``: a password with one of them as it is (``app:p@ss@host``) connected to host
    ``ss@host``, whose connection error quoted the rest of the password (``app:123/x@host``: port 123)."""
    import psycopg.conninfo

    parsed = psycopg.conninfo.conninfo_to_dict(plain_postgres_url(database_url))
    try:
        parts = urlsplit(database_url)
        user, password = parts.username, parts.password
    except ValueError:  # a [ taken for an IPv6 address, a port that is not a number
        return "invalid address"
    # user:@host is no password for both; an @ after the address (app:s3cret/x@host) ended the login at a /
    if (
        (parsed.get("password") or "") != unquote(password or "")
        or (parsed.get("user") or "") != unquote(user or "")
        or "@" in parts.path
    ):
        return "a reserved character in the user name or password"
    return None


def url_without_password(url: str) -> str:
    """``url`` with ``***`` for its password, to name a server in an error: the login ends at the URL's last
    ``@``, as no password written as it is (``#``, ``?``, ``/``, ``@`` in it) can then show. Text that is no URL
    is not quoted: libpq's ``host=db password=s3cret`` form (or ``app:s3cret@db`` without a scheme) was quoted
    whole, password included."""
    if "://" not in url:
        return "not a URL, not quoted"
    scheme, _, rest = url.partition("://")
    login, at, address = rest.rpartition("@")
    if not at or ":" not in login:
        return url
    return f"{scheme}://{login.partition(':')[0]}:***@{address}"


def acting_user() -> str:
    """Who runs the command: ``LEADS_USER``, else the OS user."""
    return os.environ.get("LEADS_USER") or os_user()


def json_text(document: Any, *, ascii_only: bool = False) -> str:
    """The one JSON encoding of every ``--json`` output and JSON file: numbers as numbers, whatever their type;
    non-ASCII characters as they are (``"José"``), or escaped (``"Jos\\u00e9"``) with ``ascii_only``.

    PostgreSQL ``numeric`` columns (annual revenue, costs) come as ``Decimal``, which were written as strings
    (``"2000000.00"``) next to integers written as numbers; a script reading the output had to know which was
    which. A whole amount is an integer, any other a float (exact to 15 significant digits, far beyond any
    amount held), whether it was a ``Decimal`` or a Python float (credits are summed as floats and came out as
    ``19.0``); dates and times are ISO 8601 text (``2026-11-03T09:30:00+00:00``, as the outputs that format
    their own times write them), anything else a string."""
    return json.dumps(_whole_numbers(document), indent=2, default=_json_value, ensure_ascii=ascii_only) + "\n"


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


RECORD_KEYS = frozenset({"leads", "lead", "company", "fields", "custom", "mapping", "pullFields", "removed", "blocked"})
"""Keys whose values keep their own keys: lead and company records, and maps keyed by canonical field names
(``first_name``, ``list_id``, ``hq_city``), CSV column names, CRM field names, table names (what an erasure
removed) or CRM connection names: the names the filter language, ``--fields``, mappings, connection files and
CSV exports use, kept as they are (README, Canonical fields); only their ids become strings (``keeps_keys``)."""

ID_LISTS = frozenset({"ids", "skippedAsDuplicates"})
"""Keys of lists of ids that their names do not end in ``Ids`` (a bulk delete's ``ids``, the leads a bulk set
left alone)."""

ID_MAPS = frozenset({"filled"})
"""Keys of maps from field names (kept) to ids (as strings): which merged lead filled each field of a survivor."""

AS_STORED_KEYS = frozenset({"data"})
"""Keys whose values are stored rows table by table (``leads privacy export``): written exactly as stored."""


def print_line(*parts: str | tuple[str, str], err: bool = False) -> None:
    """Print one line of ``parts`` on standard output (standard error with ``err``): the command's own words and
    values from a user, a file, the database or a provider (a list's name, a path, a CSV header, a company, a
    CRM's message), every character as written; a part ``(text, style)`` is styled (``("error:", "red")``).
    Printed as rich markup, a list named ``[/x] Leads`` stopped ``leads lists create`` with a MarkupError
    traceback after creating it, and ``Fair [red]2026`` was said as "created list Fair 2026" in red (rich's
    ``escape`` doubles a value's trailing backslash where no tag follows). Control characters show as ``?``, as
    the consoles show them; one line however long, as ``print_table``'s lines, for a log to grep."""
    pieces = (
        (part[0].translate(_CONTROLS), part[1]) if isinstance(part, tuple) else part.translate(_CONTROLS)
        for part in parts
    )
    (errors if err else console).print(Text.assemble(*pieces), highlight=False, soft_wrap=True)


def print_table(table: Table, lines: Sequence[tuple[str, str]], *, empty: str | None = None) -> None:
    """Print ``table`` where the terminal is wide enough for it; else each row as its two ``lines``: what names
    it, then its values, all whole. In a narrower terminal (or a pipe: 80 columns) rich cut the columns to a
    letter or two ("co…", "200,…", "2026-…") to fit, or kept one whole (a job's id) and cut the others to nothing.
    With no rows, ``empty`` says so where given: a table too wide for the terminal printed nothing at all."""
    if empty is not None and not lines:
        print_line(empty)
        return
    if _fits(table):
        console.print(table)
        return
    if table.title:  # what the rows are, where a command prints several tables (leads show's history and facts)
        print_line(f"{table.title}:")
    for first, second in lines:  # each a line however long, as a script or a log reads them
        print_line(first)
        print_line(f"  {second}")


def field_text(value: Any) -> str:
    """A record's plain value as ``print_fields`` shows it: nothing as "-", a yes/no setting as yes or no, a time
    to the second in UTC. Python's own forms were printed ("folder: None", "archived: False", "lastSynced:
    2026-11-30 22:51:03.123456+00:00")."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if value.tzinfo else f"{value:%Y-%m-%d %H:%M:%S}"
    return str(value)


def print_fields(fields: Sequence[tuple[str, str]]) -> None:
    """Print a record's ``fields`` (name, value) as a two-column table where the terminal is wide enough for it;
    else each as one line ``name: value``, the value whole. In a narrower terminal (a pipe, cron's mail: 80
    columns) a long value (a list's name, a connection's mapping or file) was broken over several lines of the
    value column, and grepping for it found nothing."""
    table = Table(show_header=False)
    for name, value in fields:
        table.add_row(name, value)
    if _fits(table):
        console.print(table)
        return
    for name, value in fields:
        print_line(f"{name}: {value}")


def _fits(table: Table) -> bool:
    """Whether ``table`` fits the console's width with every cell whole."""
    return console.measure(table, options=console.options.update(max_width=1_000)).maximum <= console.width


def print_json(document: Any) -> None:
    """Write a JSON document to stdout (``json_text``) in the API's shape (``api_shape``): names and companies as
    written ("José", "日本 KK") where stdout writes UTF-8, escaped where it cannot write them (a Latin-1 or ASCII
    locale), which the table's "?" in their place would have made another value."""
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    sys.stdout.write(json_text(api_shape(document), ascii_only=codecs.lookup(encoding).name != "utf-8"))


def api_shape(document: Any) -> Any:
    """The document as the PRD's API shapes write it: every key camelCase (``dry_run`` -> ``dryRun``) and every
    id a string (``id``, ``leadId``, ``leadIds``), whatever the store functions building it return; lead records
    keep their field names (``keeps_keys``), stored rows stay as stored (``AS_STORED_KEYS``). One place does it,
    so a new ``--json`` output cannot drift into snake_case or numeric ids as several did."""
    if isinstance(document, dict):
        shaped: dict[Any, Any] = {}
        for key, value in document.items():
            name = _camel(key) if isinstance(key, str) else key
            if key in AS_STORED_KEYS:
                shaped[name] = value
            elif key in ID_MAPS and isinstance(value, dict):
                shaped[name] = {field: str(v) if _is_int(v) else v for field, v in value.items()}
            elif keeps_keys(key):
                shaped[name] = _record_ids(value)
            else:
                shaped[name] = _id_text(name, api_shape(value))
        return shaped
    if isinstance(document, list | tuple):
        return [api_shape(item) for item in document]
    return document


def keeps_keys(key: Any) -> bool:
    """Whether the value under ``key`` keeps its own keys: ``RECORD_KEYS``, and maps by list name
    (``leads_deleted_by_list``: ``{"Q3 EMEA": 4}``)."""
    return key in RECORD_KEYS or (isinstance(key, str) and key.endswith(("_by_list", "ByList")))


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest) if head else key


def _id_text(key: Any, value: Any) -> Any:
    """``value`` with ids as text when ``key`` names an id (``id``, ``leadId``, ``list_id``) or ids (``leadIds``)."""
    if not isinstance(key, str):
        return value
    if (key == "id" or key.endswith(("Id", "_id"))) and _is_int(value):
        return str(value)
    if (key in ID_LISTS or key.endswith(("Ids", "_ids"))) and isinstance(value, list):
        return [str(v) if _is_int(v) else v for v in value]
    return value


def _record_ids(value: Any) -> Any:
    """Lead records (or lists of them) with their ids as text (``_id_text``), their keys unchanged."""
    if isinstance(value, dict):
        return {k: _id_text(k, _record_ids(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_record_ids(item) for item in value]
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
