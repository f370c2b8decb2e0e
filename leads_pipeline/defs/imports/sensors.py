"""The drop folder: a CSV saved under ``$LEADS_INBOX/<list name>/`` is imported into that list, as the OS user
owning the file: the daemon reads every file in the inbox, so the folder's permissions alone would let anyone who
may write into it import into any list (and the service, acting as each list's owner, did so)."""

import json
import pwd
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, NamedTuple

import dagster as dg

from leads_pipeline.defs.executor import BACKGROUND_PRIORITY
from leads_pipeline.defs.imports.assets import ImportConfig
from leads_pipeline.defs.imports.jobs import import_job
from leads_pipeline.defs.killed import RUNNING, WILL_RETRY_TAG, end_killed_runs
from leads_pipeline.defs.partitions import batches
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.batches import import_batch_key
from leads_pipeline.lib.countries import configured_default_region
from leads_pipeline.lib.csvfile import file_sha256
from leads_pipeline.lib.errors import ConfigurationError, NotFoundError
from leads_pipeline.lib.runtime import inbox_folder
from leads_pipeline.lib.store import imports as store
from leads_pipeline.lib.store.access import has_control_characters
from leads_pipeline.lib.store.lists import checked_list_name, get_list

IMPORTABLE_SUFFIXES = (".csv", ".tsv", ".txt")


@dataclass(frozen=True)
class DroppedFile:
    path: Path
    list_name: str
    size: int
    mtime: float
    ctime: float
    """Changes whenever the file is saved, touched, copied or moved in again (mtime survives ``mv`` and ``cp -p``)."""
    owner: str
    """The OS user owning the file: who the import acts as (it needs the editor role on the list)."""


def file_owner(uid: int) -> str:
    """The name of the OS user ``uid``; a uid without a name is named ``uid:N``, which no list has as member."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def _unnamable(folder: Path) -> str | None:
    """Why the folder's name cannot name a list (a tab, a line break or a terminal escape in it, or only spaces),
    or None: a folder named so was requested like any other, and its run failed on the list's name."""
    try:
        checked_list_name(folder.name)
    except ConfigurationError as exc:
        return str(exc)
    return None


def shown(path: str) -> str:
    """A path as the tick's log shows it: quoted with its escapes when it holds a control character, which the
    log would otherwise print to whoever reads it (a tab, or an escape that recolours the terminal)."""
    return repr(path) if has_control_characters(path) else path


def dropped_files(inbox: Path) -> list[DroppedFile]:
    """Files one level below the inbox; the folder they are in names the list. A symbolic link is not a dropped
    file: its owner is not the owner of what the daemon would read through it (another user's file). Nor is a
    linked list folder a list folder: through ``inbox/<list> -> /home/bob/exports`` the files read are bob's
    own, imported as bob into a list the link's maker named (one bob may write and the maker read)."""
    found: list[DroppedFile] = []
    if not inbox.is_dir():
        return found
    folders = (p for p in inbox.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    for folder in sorted(f for f in folders if _unnamable(f) is None):
        for path in sorted(folder.iterdir()):
            if path.is_symlink() or path.name.startswith(".") or path.suffix.lower() not in IMPORTABLE_SUFFIXES:
                continue
            if path.is_file():
                stat = path.stat()
                owner = file_owner(stat.st_uid)
                found.append(DroppedFile(path, folder.name, stat.st_size, stat.st_mtime, stat.st_ctime, owner))
    return found


def ignored_files(inbox: Path) -> dict[str, tuple[float, str]]:
    """The files in the inbox that ``dropped_files`` leaves out and someone may have meant to import, with why:
    {path: (ctime, reason)}. They were left out without a word (the UI's tick said "Sensor function returned an
    empty result"), so a file saved in the inbox itself or an Excel workbook waited for an import that never came;
    so did the files of a folder inside a list folder (``inbox/Q3 EMEA/week 1/leads.csv``), of which the tick log
    said nothing. Hidden files (an editor's, the Finder's) are not named."""
    found: dict[str, tuple[float, str]] = {}
    if not inbox.is_dir():
        return found
    where = f"{inbox}/<list name>/"
    linked = f"a symbolic link, not followed (it may lead to another user's files): copy what it links to into {where}"
    kinds = f"{', '.join(IMPORTABLE_SUFFIXES[:-1])} or {IMPORTABLE_SUFFIXES[-1]}"
    for entry in sorted(inbox.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            found[str(entry)] = (entry.lstat().st_ctime, linked)
        elif entry.is_file():
            found[str(entry)] = (entry.stat().st_ctime, f"not in a list folder: move it into {where} to import it")
        elif entry.is_dir() and (unnamable := _unnamable(entry)) is not None:  # again when a file is added to it
            found[str(entry)] = (entry.stat().st_ctime, f"{unnamable}: rename the folder to import its files")
        elif entry.is_dir():
            for path in sorted(entry.iterdir()):
                if path.name.startswith("."):
                    continue
                if path.is_symlink():
                    found[str(path)] = (path.lstat().st_ctime, linked)
                elif path.is_file() and path.suffix.lower() not in IMPORTABLE_SUFFIXES:
                    reason = f"not a {kinds} file: save it as CSV to import it"
                    found[str(path)] = (path.stat().st_ctime, reason)
                elif path.is_dir():  # said again when a file is added to it (its ctime changes)
                    reason = f"a folder in list folder {entry.name!r}: move its files up into {entry}/ to import them"
                    found[str(path)] = (path.stat().st_ctime, reason)
    return found


class PreviousImport(NamedTuple):
    """What the database says of earlier imports of a file's content into its list."""

    imported: bool
    """The content was imported into the list."""
    batch: str | None = None
    """The batch of a failed or interrupted import of it, to resume (as ``leads import`` does), so that its leads
    and the rest of the file end up in one import."""
    interrupted: bool = False
    """That import is interrupted: its process was killed (``_fail_killed_runs``)."""
    dagster_run_id: str | None = None
    """The Dagster run that last held that import's lock (sql/126)."""


def _previous_import(database: LeadsDatabase, list_name: str, sha256: str) -> PreviousImport:
    with database.connection() as conn:
        try:
            lead_list = get_list(conn, list_name, None)
        except NotFoundError:
            return PreviousImport(imported=False)
        if store.completed_import_of_file(conn, lead_list.id, sha256) is not None:
            return PreviousImport(imported=True)
        unfinished = store.unfinished_import(conn, lead_list.id, sha256)
        if unfinished is None or unfinished["status"] not in ("failed", "interrupted"):
            return PreviousImport(imported=False)  # (one still running is not run beside itself)
        return PreviousImport(
            imported=False,
            batch=unfinished["batch_id"],
            interrupted=unfinished["status"] == "interrupted",
            dagster_run_id=unfinished["dagster_run_id"],
        )


KILLED_MESSAGE = (
    "the process running its import was killed: `leads imports show` reads the import interrupted, and the file"
    " dropped again resumes it"
)

UNRECORDED_GRACE_S: Final = 600.0
"""How long after its start a run importing the file, which has not recorded itself on the import, may still be on
its way to the import's lock (loading the code, resolving the list: seconds): one started longer ago whose import
is interrupted died before it took the lock, or ran the code from before sql/126, which recorded no run."""


def _fail_killed_runs(instance: dg.DagsterInstance, tags: dict[str, str], killed_run: str | None) -> int:
    """Report failed the runs of an interrupted import (no process holds its lock) that Dagster records as
    started: they were killed and never wrote their end. Dagster showed them started for good, and the file dropped
    again was skipped as being imported (``_run_in_flight``) until the run was terminated from the UI. Ended are
    the run recorded on the import (``killed_run``: it held the lock, which is free) and, by this content's
    ``tags``, the runs started more than ``UNRECORDED_GRACE_S`` ago. A run started since, which has not reached the
    lock yet (Dagster marks a run started well before its step runs), is left alone: taken for the killed one, it
    was reported failed while it went on to import the file, and the run requested in its place was refused. A run
    queued or starting has not begun its import either. Dagster's run retries do not run them again: the sensor
    requests the resume itself, and the two resumed side by side, one refused "still running". How many were
    reported."""
    begun = (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)
    ended = 0
    if killed_run is not None:
        ended += end_killed_runs(
            instance, KILLED_MESSAGE, failed=True, run_ids=[killed_run], statuses=begun, retried=False
        )
    started_before = time.time() - UNRECORDED_GRACE_S
    return ended + end_killed_runs(
        instance, KILLED_MESSAGE, failed=True, tags=tags, statuses=begun, started_before=started_before, retried=False
    )


IN_FLIGHT: tuple[dg.DagsterRunStatus, ...] = (*RUNNING, dg.DagsterRunStatus.QUEUED)


def _run_in_flight(instance: dg.DagsterInstance, tags: dict[str, str]) -> bool:
    """Whether a run importing this content into this list (its ``tags``) is queued or running. The cursor
    remembers what it requested only while the file is unchanged in place: a file whose cursor entry is gone (a
    ctime changed by chmod or a backup tool, a cursor the sensor cannot read) would otherwise start a second
    import of the content beside the first."""
    filters = dg.RunsFilter(tags=tags, statuses=list(IN_FLIGHT))
    return bool(instance.get_run_records(filters=filters, limit=1))


RETRY_FAILED: Final = "Failed to retry run"
"""The engine event Dagster's run retries (dagster.yaml) report on a failed run they could not launch again
(``auto_run_reexecution``), after which they never try again."""
FAILURE_REASON_TAG: Final = "dagster/failure_reason"
AUTO_RETRY_RUN_TAG: Final = "dagster/auto_retry_run_id"
LOST_RETRY_WINDOW: Final = timedelta(days=1)
"""How long after a run whose retry was lost the sensor still resumes its file by itself (then: touch it)."""


def _lost_retries(instance: dg.DagsterInstance) -> dict[tuple[str, str], dg.RunRecord]:
    """The drop folder's latest failed run of each (list, sha256) of the last ``LOST_RETRY_WINDOW`` that Dagster
    will not retry: one query per tick, whatever the number of files left in the inbox."""
    filters = dg.RunsFilter(
        tags={"leads/source": "inbox", WILL_RETRY_TAG: "false"},
        statuses=[dg.DagsterRunStatus.FAILURE],
        updated_after=datetime.now(UTC) - LOST_RETRY_WINDOW,
    )
    latest: dict[tuple[str, str], dg.RunRecord] = {}
    for record in instance.get_run_records(filters):  # newest first
        tags = record.dagster_run.tags
        latest.setdefault((tags.get("leads/list", ""), tags.get("leads/sha256", "")), record)
    return latest


def _retry_lost(instance: dg.DagsterInstance, record: dg.RunRecord, tags: dict[str, str]) -> bool:
    """Whether ``record``, the last run importing this content, failed for its run (not its step: a bad file stays
    failed) and Dagster's run retry of it failed too: the embedded PostgreSQL stopped under ``leads dev`` failed
    the run, and the retry came while the server still refused connections (``DagsterCodeLocationLoadError``), so
    the file was imported only once the user touched it. No run of the content has been requested since."""
    run = record.dagster_run
    if run.tags.get(FAILURE_REASON_TAG) == "STEP_FAILURE" or AUTO_RETRY_RUN_TAG in run.tags:
        return False
    if instance.get_run_records(dg.RunsFilter(tags=tags, created_after=record.create_timestamp), limit=1):
        return False
    events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    return any(e.dagster_event is not None and e.dagster_event.message == RETRY_FAILED for e in events)


def _requested_files(cursor: dict[str, object], present: dict[str, DroppedFile]) -> dict[str, list[object]]:
    """The requests still standing: {identity: [path, ctime] of the file that was requested}. One whose file left
    the inbox or was saved again is forgotten, so that a file dropped again after a failed import is imported
    (content imported already is still skipped, by the database). A cursor of an earlier version holds bare
    identities: their files are looked at again once."""
    requested = cursor.get("requested", {})
    if not isinstance(requested, dict):
        return {}
    return {
        identity: [path, ctime]
        for identity, (path, ctime) in requested.items()
        if path in present and present[path].ctime == ctime
    }


def _state(database: LeadsDatabase, cursor: str | None) -> tuple[dict[str, Any], int | None]:
    """The state a tick starts from (each file's size and times, hash and request) and its generation, which the
    cursor names (sql/150). The cursor held the state itself, which Dagster stores with every tick: 200 files left
    in the inbox took 36 KB a tick, ~2 GB over the week skipped ticks are kept. A cursor of an earlier version is
    that state; none (a reset cursor) starts afresh, as does a generation no longer stored."""
    document = json.loads(cursor) if cursor else {}
    generation = document.get("generation")
    if not isinstance(generation, int):
        return document, None
    with database.connection() as conn:
        return store.inbox_sensor_state(conn, generation) or {}, generation


@dg.sensor(
    job=import_job,
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Imports each CSV dropped in $LEADS_INBOX/<list>/ once it stops growing, once per list and content.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, database: LeadsDatabase) -> dg.SensorResult:
    # A dropped file has no option to give a region. Read first, so that a LEADS_DEFAULT_REGION that is no region
    # fails every tick, not only the one that requests a file.
    default_region = configured_default_region()
    before, generation = _state(database, context.cursor)
    previous: dict[str, list[float]] = before.get("seen", {})
    inbox = inbox_folder()
    present = {str(dropped.path): dropped for dropped in dropped_files(inbox)}
    requested = _requested_files(before, present)
    # A file's hash, kept while it is unchanged: every file left in the inbox was hashed again on every tick
    # (0.16 s of CPU per 200 MB, every 10 s, for each imported file retention keeps).
    hashed: dict[str, list[object]] = before.get("hashed", {})
    hashes: dict[str, list[object]] = {}
    seen: dict[str, list[float]] = {}
    run_requests: list[dg.RunRequest] = []
    new_partitions: list[str] = []
    resumed: list[str] = list(before.get("resumed", []))  # the lost runs requested again: once each
    said: dict[str, float] = before.get("ignored", {})
    ignored: dict[str, float] = {}
    for path, (changed, reason) in ignored_files(inbox).items():
        ignored[path] = changed
        if said.get(path) != changed:  # once a file, and again when it is saved anew
            context.log.info(f"{shown(path)}: ignored: {reason}")
    lost = _lost_retries(context.instance) if requested else {}
    lost = {k: r for k, r in lost.items() if r.dagster_run.run_id not in resumed}
    for key, dropped in present.items():
        seen[key] = [dropped.size, dropped.mtime]
        if previous.get(key) != seen[key]:
            continue  # new or still growing: look again on the next tick
        ctime, sha = hashed.get(key) or (None, None)
        if ctime != dropped.ctime or not isinstance(sha, str):
            sha = file_sha256(dropped.path)
        hashes[key] = [dropped.ctime, sha]
        identity = f"{dropped.list_name.casefold()}|{sha}"
        tags = {"leads/source": "inbox", "leads/list": dropped.list_name, "leads/sha256": sha}
        run_key = f"{identity}|{dropped.ctime}"  # this drop of the file: a later drop is a new request
        if identity in requested:
            failed = lost.get((dropped.list_name, sha)) if requested[identity][0] == key else None
            if failed is None or not _retry_lost(context.instance, failed, tags):
                if key not in hashed and requested[identity][0] != key:  # said once, as the file is first hashed
                    context.log.info(
                        f"{dropped.path}: same content as {requested[identity][0]}, imported once into list"
                        f" {dropped.list_name!r}: skipped"
                    )
                continue
            context.log.info(
                f"{dropped.path}: run {failed.dagster_run.run_id} failed and so did Dagster's retry of it (the"
                " database away?): requested again"
            )
            run_key = f"{run_key}|after {failed.dagster_run.run_id}"
            resumed.append(failed.dagster_run.run_id)
        requested[identity] = [key, dropped.ctime]
        earlier = _previous_import(database, dropped.list_name, sha)
        if earlier.imported:
            context.log.info(f"{dropped.path}: already imported into list {dropped.list_name!r}, skipped")
            continue
        if earlier.interrupted and (killed := _fail_killed_runs(context.instance, tags, earlier.dagster_run_id)):
            context.log.info(f"{dropped.path}: its import was interrupted: {killed} killed run(s) reported failed")
        if _run_in_flight(context.instance, tags):
            context.log.info(f"{dropped.path}: its import into list {dropped.list_name!r} is running, skipped")
            continue
        batch_key = earlier.batch or import_batch_key(dropped.list_name, sha)
        new_partitions.append(batch_key)
        config = ImportConfig(
            path=key,
            list_name=dropped.list_name,
            create_list=True,
            sha256=sha,
            user=dropped.owner,
            default_region=default_region,
        )
        run_requests.append(
            dg.RunRequest(
                run_key=run_key,
                partition_key=batch_key,
                run_config=dg.RunConfig(ops={"batch_leads": config}),
                tags={**tags, **BACKGROUND_PRIORITY},
            )
        )
    state = {"seen": seen, "hashed": hashes, "requested": requested, "resumed": resumed[-100:], "ignored": ignored}
    if generation is None or state != before:  # an unchanged inbox writes nothing
        with database.connection() as conn:
            generation = store.save_inbox_sensor_state(conn, state, generation)
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[batches.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps({"generation": generation}),
    )
