"""The import stage: a batch's file becomes leads in its list."""

import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, NamedTuple

import dagster as dg

from leads_pipeline.defs.config import RunConfig
from leads_pipeline.defs.executor import final_failure, stops_on_interrupt
from leads_pipeline.defs.imports.checks import CHECK_SPECS, no_duplicates_check, preview_value, stored_leads_check
from leads_pipeline.defs.partitions import batches, registered_batch
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.countries import configured_default_region
from leads_pipeline.lib.errors import ConfigurationError, NotFoundError, PermanentError
from leads_pipeline.lib.importer import ImportOptions, ProgressCallback, run_import
from leads_pipeline.lib.mapping import unmapped_labels
from leads_pipeline.lib.store import access
from leads_pipeline.lib.store import imports as store
from leads_pipeline.lib.store.lists import Connection, get_list, get_list_by_id
from leads_pipeline.lib.stored_check import MergedLeadsCheck
from leads_pipeline.lib.workers import DEFAULT_CHUNK_ROWS

PROGRESS_LOG_SECONDS = 10.0
"""At most one progress line per this many seconds in the run's log (besides the first and the last)."""

UNMAPPED = "custom"
"""The mapping value that sends a column to the lead's custom fields (run config cannot carry nulls in a map)."""


class ImportConfig(RunConfig):
    """What to import into the batch: the launcher (CLI or sensor) fills it in. Left out (a backfill or a
    materialization launched from the Dagster UI, which has no file to give), the batch's recorded import is
    reported, or resumed with its file, list and options."""

    path: str | None = None
    """The CSV file to import as this batch, a path on the machine that runs it (give ``list_name`` too)."""
    list_name: str | None = None
    """The list the file's leads go into (give ``path`` too)."""
    on_duplicate: Literal["skip", "update"] = "skip"
    """A row matching a lead already in the list: ``skip`` keeps the lead, ``update`` overwrites it with the row's
    non-empty values."""
    mapping: dict[str, str] = {}  # noqa: RUF012 - pydantic copies defaults
    """Column: lead field, over the suggested mapping (``custom`` keeps the column as a custom field)."""
    default_region: str | None = None
    """The country (ISO code) a phone without a country code is read in when its row has no country; unset,
    ``LEADS_DEFAULT_REGION``, else US."""
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    """Rows per committed chunk: a re-run resumes after the last committed one."""
    user: str | None = None
    """Who imports: `leads import`'s acting user, or the OS owner of a file dropped in the inbox. They need the
    editor role on the list, as `leads import` checks (a list that ``create_list`` creates is theirs). Unset (a
    launch from the Dagster UI), the import runs as the service, into any list."""
    create_list: bool = False
    """Create ``list_name`` (owned by ``user``) when there is no such list, rather than fail."""
    sha256: str | None = None
    """The content the sensor saw: a file saved over before the run started is refused (the batch is named after
    that content, and the sensor requests the new content once it is stable)."""

    def options(self) -> ImportOptions:
        """The importer's options. ``chunk_rows`` below 1 is refused: `leads import --chunk-rows` takes 100 at
        least, but the launchpad took anything, and 0 failed the run with Python's "range() arg 3 must not be zero"
        after two retries, a negative number imported no row and reported the import completed."""
        if self.chunk_rows < 1:
            raise ConfigurationError(
                f"chunk_rows must be a number of rows >= 1 (rows per committed chunk, default"
                f" {DEFAULT_CHUNK_ROWS:,}); got {self.chunk_rows}"
            )
        overrides = {column: (None if target == UNMAPPED else target) for column, target in self.mapping.items()}
        return ImportOptions(
            on_duplicate=self.on_duplicate,
            mapping_overrides=overrides,
            default_region=configured_default_region(self.default_region),
            chunk_rows=self.chunk_rows,
            create_list=self.create_list,
        )


class ResolvedImport(NamedTuple):
    """What a run imports: the file and the list, which ``ImportConfig`` may leave out, and the rest of the
    configuration (mapping, options, user, content)."""

    path: Path
    list_name: str
    config: ImportConfig


def recorded_import(conn: Connection, batch_id: str) -> ResolvedImport:
    """The import recorded for ``batch_id``: its file (the content it began with), list, mapping and options. The
    service resumes it, as any launch from the UI acts."""
    record = store.import_for_batch(conn, batch_id)
    if record is None:
        raise PermanentError(
            f"batch {batch_id} has no import to report or resume: give path and list_name in the run config"
            " (ops: batch_leads: config:) to import a file as this batch"
        )
    lead_list = get_list_by_id(conn, record["list_id"])
    options = record["options"]
    config = ImportConfig(
        on_duplicate=options.get("on_duplicate", "skip"),
        mapping={column: field or UNMAPPED for column, field in record["mapping"].items()},
        default_region=options.get("default_region", "US"),
        chunk_rows=record["chunk_rows"],
        sha256=record["file_sha256"],
    )
    return ResolvedImport(Path(record["file_path"]), lead_list.name, config)


def resolved_import(database: LeadsDatabase, batch_id: str, config: ImportConfig) -> ResolvedImport:
    """``config`` when it names the file and the list, else the batch's recorded import (``recorded_import``)."""
    if config.path is not None and config.list_name is not None:
        return ResolvedImport(Path(config.path), config.list_name, config)
    if config.path is not None or config.list_name is not None:
        raise ConfigurationError(
            "give both path and list_name to import a file as this batch, or neither to report or resume its import"
        )
    with database.connection() as conn:
        return recorded_import(conn, batch_id)


def _require_importer(conn: Connection, list_name: str, user: str, *, create: bool) -> None:
    """The editor role on the list (a non-member is told what an unknown list's name is told); nothing for a
    list the run will create with ``user`` as its owner. The refusal names who the run acts as: in the Dagster UI
    "not shared with you" read as the person looking, while the run acts as the OS user owning the dropped file
    (an SFTP drop's service user), whom no one had shared the list with."""
    hint = (
        f"the import acts as {user!r}, who owns the file dropped in the inbox or is the run config's user: a list's"
        f" owner lets them import with `leads lists share {shlex.quote(list_name)} {user} --role editor`, then"
        " the file saved again (`touch`) or this run re-executed imports it"
    )
    try:
        lead_list = get_list(conn, list_name, None)
    except NotFoundError:
        if create:
            return
        raise NotFoundError(access.not_shared(f"list {list_name!r}", hint)) from None
    access.require(conn, lead_list.id, user, "editor", "importing into it", hint=hint)


def _errors_table(status: dict[str, Any]) -> str:
    """The import's first errors, each cell's value as ``preview_value`` shows that of the field its column maps to
    (the database keeps the cells sealed; Dagster's event log beside it must not hold a person's in clear). Under
    a preview that does not hold them all, how many there are and the command listing them: the first 20 of a file's
    hundreds of problems read as all of them."""
    errors: list[dict[str, Any]] = status["errors"]
    if not errors:
        return "none"
    mapping: dict[str, str | None] = status["mapping"]
    lines = ["| row | column | value | reason | severity |", "|---|---|---|---|---|"]
    for e in errors:
        field = mapping.get(str(e["column"])) if e["column"] else None
        value = preview_value(field, e["value"]).replace("|", "\\|")[:60]
        lines.append(f"| {e['row']} | {e['column'] or ''} | {value} | {e['reason']} | {e['severity']} |")
    problems = status["results"]["errors"] + status["warnings"]
    if problems > len(errors):
        lines.append(
            f"\nthe first {len(errors)} of {problems:,} problems: `leads imports errors {status['importId']}` lists"
            " them all (`--csv` for a spreadsheet)"
        )
    return "\n".join(lines)


def _progress_log(log: dg.DagsterLogManager) -> ProgressCallback:
    """Progress lines for the run's log, spaced out: each is a write to Dagster's event log storage, made between
    two chunks (75 ms each on the embedded server), so a line per chunk cost a 1M-row import ~1.5 s."""
    last_logged: float | None = None

    def log_progress(done: int, total: int) -> None:
        nonlocal last_logged
        now = time.monotonic()
        if done < total and last_logged is not None and now - last_logged < PROGRESS_LOG_SECONDS:
            return
        last_logged = now
        # processed, not imported: a file of 6 rows with 2 rejected said "imported 6 of 6 rows" above the
        # materialization's "imported: 4", "rejected: 2"
        log.info(f"processed {done:,} of {total:,} rows")

    return log_progress


@dg.asset(
    partitions_def=batches,
    group_name="imports",
    kinds={"postgres", "csv"},
    check_specs=CHECK_SPECS,
    retry_policy=dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
@stops_on_interrupt
def batch_leads(
    context: dg.AssetExecutionContext, config: ImportConfig, database: LeadsDatabase
) -> dg.MaterializeResult:
    """The leads of one batch: the rows of an imported file, mapped, normalized, validated and merged into the
    list (new leads inserted, duplicates skipped or updated by the list's dedupe setting). Resumable: a re-run
    continues after the last committed chunk. Bad rows are recorded with their line, column, value and reason."""
    batch_id = registered_batch(context)
    checks: list[dg.AssetCheckResult] = []

    def check_duplicates() -> dg.AssetCheckResult:
        with database.connection() as conn:
            lead_list = get_list(conn, list_name, None)
            return no_duplicates_check(conn, lead_list.id, lead_list.dedupe)

    def check_stored_leads() -> None:
        # The duplicate check (one backend, ~2 s for 1M leads) runs on a connection of its own beside the schema
        # check: after it, it ran alone at the end of the import's index builds.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="duplicates-check") as beside:
            duplicates = beside.submit(check_duplicates)
            with database.connection() as conn:
                schema = stored_leads_check(conn, batch_id, merged.checked())
            checks[:] = [schema, duplicates.result()]

    try:
        path, list_name, given = resolved_import(database, batch_id, config)
        if given.user is not None:
            with database.connection() as conn:
                _require_importer(conn, list_name, given.user, create=given.create_list)
        # the schema check runs on each chunk's new leads as it commits; at the end on the leads changed since
        with MergedLeadsCheck(database.database_url, batch_id) as merged:
            status = run_import(
                database.database_url,
                batch_id=batch_id,
                path=path,
                list_name=list_name,
                options=given.options(),
                user=given.user,
                on_progress=_progress_log(context.log),
                after_merge=merged.merged,
                alongside_index_build=check_stored_leads,
                expected_sha256=given.sha256,
                dagster_run_id=context.run_id,
            )
    except PermanentError as exc:  # retrying cannot cure a bad file or an unknown list
        raise final_failure(str(exc)) from exc
    results = status["results"]
    warnings = status["warnings"]
    context.log.info(
        f"{results['imported']:,} imported, {results['updated']:,} updated, {results['skipped']:,} skipped,"
        f" {results['errors']:,} rejected; {warnings:,} warning{'' if warnings == 1 else 's'}"
    )
    unmapped = unmapped_labels(list(status["mapping"]))
    mapping_table = "\n".join(
        ["| column | field |", "|---|---|"] + [f"| {c} | {f or unmapped[c]} |" for c, f in status["mapping"].items()]
    )
    return dg.MaterializeResult(
        metadata={
            "import_id": dg.MetadataValue.text(status["importId"]),
            "list": dg.MetadataValue.text(list_name),
            "file": dg.MetadataValue.path(status["file"]),  # a completed batch's own file, whatever path was given
            "rows": dg.MetadataValue.int(status["progress"]["total"]),
            "imported": dg.MetadataValue.int(results["imported"]),
            "updated": dg.MetadataValue.int(results["updated"]),
            "skipped": dg.MetadataValue.int(results["skipped"]),
            "rejected": dg.MetadataValue.int(results["errors"]),
            "warnings": dg.MetadataValue.int(status["warnings"]),
            "mapping": dg.MetadataValue.md(mapping_table),
            "errors_preview": dg.MetadataValue.md(_errors_table(status)),
        },
        check_results=checks,
    )
