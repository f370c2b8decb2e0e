"""``leads enrich``, ``leads jobs``, ``leads templates``, ``leads credits`` and
``leads enrich-after-import``: enrichment from the terminal, through the same Dagster assets as the UI and sensors."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from leads_pipeline.commands.common import (
    Table,
    acting_user,
    console,
    environment,
    fail,
    print_json,
    print_line,
    print_table,
    run_or_fail,
)
from leads_pipeline.commands.selection import (
    ListOption,
    ScoreMaxOption,
    ScoreMinOption,
    StageOption,
    TagOption,
    WhereOption,
    note_unheard_stages,
)
from leads_pipeline.lib.errors import ConfigurationError, LeadsError
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.runtime import Environment
from leads_pipeline.lib.wording import counted, credit_amount, plain_number

if TYPE_CHECKING:
    from leads_pipeline.lib.store.enrichment import Job
    from leads_pipeline.lib.store.lists import Connection

jobs_app = typer.Typer(help="Enrichment jobs: progress, results, credits.", no_args_is_help=True)
templates_app = typer.Typer(help="Enrichment templates (waterfalls): list, show, validate.", no_args_is_help=True)

Priority = Annotated[str, typer.Option(help="Run priority: low, normal or high.")]
MaxCredits = Annotated[float | None, typer.Option("--max-credits", help="Never spend more than this on the job.")]


def _check_priority(priority: str) -> str:
    from leads_pipeline.lib.enrichment.jobs import PRIORITIES

    if priority not in PRIORITIES:
        raise ConfigurationError(f"--priority must be low, normal or high; got {priority!r}")
    return priority


def _check_max_credits(max_credits: float | None) -> None:
    from leads_pipeline.lib.enrichment.jobs import check_max_credits

    check_max_credits(max_credits)


def _check_notify(url: str | None) -> None:
    """A webhook URL the completion POST can reach: an http(s) URL with a host. Anything else was stored and
    failed only when the job ended, in a delivery row the user never sees. Not echoed: its query may hold a token.
    """
    if url is None:
        return
    try:
        parts = urlsplit(url.strip())
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises for a port out of range, whose delivery error quoted the URL's password)
    except ValueError:  # an unclosed [IPv6] host, a port out of range
        usable = False
    if not usable:
        raise ConfigurationError("--notify must be an http:// or https:// URL with a host name")


def _selection(
    lists: list[str] | None,
    where: list[str] | None,
    tags: list[str] | None,
    stages: list[str] | None,
    score_min: int | None,
    score_max: int | None,
    ids_file: Path | None,
) -> tuple[Selection, Path | None]:
    """The leads to enrich in the filter language of ``leads search`` (``--ids FILE`` adds explicit ids)."""
    from leads_pipeline.lib.filters import read_ids_file

    wanted = read_ids_file(ids_file) if ids_file is not None else None
    selection = Selection.build(
        lists=lists, where=where, tags=tags, stages=stages, score_min=score_min, score_max=score_max, ids=wanted
    )
    if selection == Selection():
        raise ConfigurationError(
            "say which leads to enrich: give --list, --where, --tag, --stage, --score-min/--score-max or --ids FILE"
        )
    return selection, ids_file


def _label(selection: Selection, ids_file: Path | None) -> str:
    """What the job id says it enriched: the one list, the ids file, or "selection"."""
    if len(selection.lists) == 1:
        return selection.lists[0]
    return ids_file.stem if ids_file is not None else "selection"


def _selected_ids(conn: Connection, selection: Selection, ids_file: Path | None, user: str) -> list[int]:
    """The matching lead ids, after checking that ``user`` may edit every list they belong to (enrichment
    changes leads); every id of an ids file must be a live lead the user can edit."""
    from leads_pipeline.lib.store.bulk import matched_leads

    return matched_leads(conn, selection, user, "enriching its leads", named_by=str(ids_file) if ids_file else "--ids")


def create_job(
    env: Environment,
    *,
    selection: Selection,
    ids_file: Path | None,
    sources: list[str],
    template_name: str,
    overwrite: bool,
    priority: str,
    max_credits: float | None,
    notify_url: str | None,
    estimate_only: bool,
    keeper: Connection,
) -> tuple[dict[str, Any], Any]:
    """Create the selection batch and job with its estimate, in one transaction (rolled back for --estimate). The
    job's lock is taken on ``keeper`` before the job is committed: the caller holds it until it runs the job or
    hands it to the process that does (``_spawn``), so the job never reads as interrupted while it starts."""
    from leads_pipeline.lib.enrichment.jobs import estimate, job_key, launch_refusal, month_budget
    from leads_pipeline.lib.enrichment.providers import require_assets
    from leads_pipeline.lib.enrichment.templates import load_template
    from leads_pipeline.lib.store import enrichment as store
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.search import create_selection_batch

    _check_max_credits(max_credits)
    template = load_template(template_name)
    job_id = job_key(_label(selection, ids_file))
    user = acting_user()
    with connect(env.database_url) as conn:
        if not _selected_ids(conn, selection, ids_file, user):
            note_unheard_stages(conn, selection, user)
            described = selection.describe(values=True)
            raise ConfigurationError(f"the selection ({described}) holds no leads; nothing to enrich")
        _, queued = create_selection_batch(
            conn,
            selection,
            user,
            batch_id=job_id,
            description=f"enrich {','.join(sources)} ({template.name}): {selection.describe()}",
        )
        plan = estimate(conn, job_id, sources, template, overwrite=overwrite)
        if estimate_only:
            month = month_budget(conn, plan)
            conn.rollback()
            if month is not None:  # what the launch below would say of it
                plan["monthlyBudget"] = month.as_json()
            return plan, None
        refusal = launch_refusal(conn, plan)
        if refusal is not None:
            raise ConfigurationError(refusal)
        # once every refusal that needs no Dagster is made: loading the definitions takes ~2.4 s of CPU and 190 MB
        require_assets(sources, _available_assets())
        store.claim_job(keeper, job_id)
        job = store.create_job(
            conn,
            job_id,
            sources=sources,
            template=template_name,
            overwrite=overwrite,
            priority=priority,
            max_credits=max_credits,
            estimate=plan,
            leads_queued=queued,
            notify_url=notify_url,
            created_by=user,
            run_in_process=True,  # a `leads` process runs it: the detached `leads jobs run`, or this one
        )
    return plan, job


def _available_assets() -> set[str]:
    from leads_pipeline.definitions import defs

    return {key.to_user_string() for key in defs.resolve_all_asset_keys()}


def enrich(
    lists: ListOption = None,
    where: WhereOption = None,
    tags: TagOption = None,
    stages: StageOption = None,
    score_min: ScoreMinOption = None,
    score_max: ScoreMaxOption = None,
    ids: Annotated[
        Path | None, typer.Option("--ids", help="A file of lead ids, one per line (or a CSV id column).")
    ] = None,
    sources: Annotated[
        str | None,
        typer.Option(help="email, phone, linkedin, company (comma-separated) or all; default: the template's."),
    ] = None,
    template: Annotated[str, typer.Option(help="basic, standard, premium, or a template YAML file.")] = "standard",
    overwrite: Annotated[bool, typer.Option(help="Replace values the leads already have.")] = False,
    priority: Priority = "normal",
    max_credits: MaxCredits = None,
    notify: Annotated[str | None, typer.Option(help="Webhook URL that gets the job summary when it ends.")] = None,
    estimate_only: Annotated[bool, typer.Option("--estimate", help="Show credits and time; launch nothing.")] = False,
    wait: Annotated[bool, typer.Option(help="Run now and show a live progress bar until the job ends.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the PRD's JSON shape.")] = False,
) -> None:
    """Enrich a selection of leads (the options of `leads search`; editor role needed): creates a batch, launches
    the source assets through Dagster."""
    from leads_pipeline.lib.enrichment.jobs import launch_response
    from leads_pipeline.lib.enrichment.providers import parse_sources
    from leads_pipeline.lib.enrichment.templates import load_template
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def create(keeper: Connection) -> tuple[dict[str, Any], Any]:
        chosen = parse_sources(sources) if sources is not None else list(load_template(template).sources)
        _check_priority(priority)
        _check_notify(notify)
        selection, ids_file = _selection(lists, where, tags, stages, score_min, score_max, ids)
        return create_job(
            env,
            selection=selection,
            ids_file=ids_file,
            sources=chosen,
            template_name=template,
            overwrite=overwrite,
            priority=priority,
            max_credits=max_credits,
            notify_url=notify,
            estimate_only=estimate_only,
            keeper=keeper,
        )

    with connect(env.database_url, autocommit=True) as keeper:  # holds the job's lock until it runs
        plan, job = run_or_fail(lambda: create(keeper))
        if job is None:
            if as_json:
                print_json(plan)
            else:
                _print_estimate(plan)
            return
        if wait:
            _run_with_progress(env, job.id, quiet=as_json)
            _print_ended(job_summary(env, job.id), as_json=as_json)
            return
        _spawn(env, job.id, keeper)
    document = launch_response(job)
    if as_json:
        print_json(document)
    else:
        print_line(  # the command on one line to copy, however narrow the terminal (a log: 80 columns)
            "job ",
            (job.id, "bold"),
            f" queued: {counted(job.leads_queued, 'lead')}, ~{credit_amount(job.estimated_credits)},"
            f" ~{plain_number(job.estimated_seconds)} s. Follow it with `leads jobs show {job.id}`.",
        )


def _print_estimate(plan: dict[str, Any]) -> None:
    table = Table("source", "leads needing", "estimated credits", "at most", "time (s)", title="estimate")
    lines = []
    for source, part in plan["sources"].items():
        needing, seconds = f"{part['leadsNeeding']:,}", f"{part['estimatedTime']:.0f}"
        credits, most = plain_number(part["estimatedCredits"]), plain_number(part["maxCredits"])
        table.add_row(source, needing, credits, most, seconds)
        # narrower than the table (a split terminal) rich cut its cells to "comp…" and "sour…": two lines a source
        lines.append((f"{source}: {needing} leads needing", f"~{credits} credits (at most {most}), ~{seconds} s"))
    print_table(table, lines)
    print_line(
        f"{counted(plan['leads'], 'lead')}, template {plan['template']}: ~{credit_amount(plan['estimatedCredits'])} "
        f"(at most {plain_number(plan['maxCredits'])}), ~{plan['estimatedTime']} s. Nothing was launched."
    )
    month = plan.get("monthlyBudget")
    if month is None:
        return
    print_line(
        f"monthly budget of {credit_amount(month['budget'])}: {plain_number(month['usedThisMonth'])} used this month, "
        f"{plain_number(month['left'])} left; {month['note']}"
    )


def _spawn(env: Environment, job_id: str, keeper: Connection) -> None:
    """Run the job in a detached ``leads jobs run`` process, logging to $LEADS_HOME/logs/<job>.log, and hand it
    the job's lock that ``keeper`` holds once it waits for it (or has ended): the job reads as alive while the
    process starts, and as interrupted as soon as it died, not a minute later."""
    from leads_pipeline.lib.store import enrichment as store
    from leads_pipeline.lib.store import liveness

    logs = env.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{job_id}.log").open("ab") as log:
        runner = subprocess.Popen(
            [sys.executable, "-c", "from leads_pipeline.cli import app; app()", "jobs", "run", job_id, "--handover"],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=os.environ.copy(),
        )
    deadline = time.monotonic() + store.HANDOVER_S
    while runner.poll() is None and time.monotonic() < deadline:
        if liveness.awaited(keeper, liveness.ENRICHMENT_JOB, job_id):
            break
        time.sleep(0.05)
    liveness.release(keeper, liveness.ENRICHMENT_JOB, job_id)


def execute_job(env: Environment, job_id: str, *, claimed: bool = False, log_level: str = "CRITICAL") -> None:
    """Run the job here (``claimed``: this process already holds its lock), Dagster's console log at
    ``log_level``."""
    from leads_pipeline.defs.enrichment.jobs import materialize_job
    from leads_pipeline.launcher import instance
    from leads_pipeline.lib.store import enrichment as store
    from leads_pipeline.lib.store.db import connect

    with connect(env.database_url) as conn:
        job = store.get_job(conn, job_id)
    materialize_job(env.database_url, job, claimed=claimed, instance=run_or_fail(instance), log_level=log_level)


def _run_with_progress(env: Environment, job_id: str, *, quiet: bool) -> None:
    """Run the job here, its lock held by the caller, with a progress bar (``quiet``: without)."""
    errors: list[LeadsError] = []

    def work() -> None:
        try:
            execute_job(env, job_id, claimed=True)
        except LeadsError as exc:
            errors.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    if quiet:
        worker.join()
    else:
        _follow(env, job_id, worker.is_alive)
    if errors:
        fail(str(errors[0]))


_ENDED = ("completed", "partial", "failed", "interrupted")
"""The statuses a job ends in (interrupted: its process is gone)."""


def _follow(env: Environment, job_id: str, running: Any, *, quiet: bool = False) -> None:
    """Wait for the job to end, with a progress bar on a terminal (``quiet``: without). Written to a pipe or a
    file, the bar was printed once at the end, a line of box-drawing characters among the output a script reads."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False, disable=quiet or not console.is_terminal) as progress:
        task = progress.add_task("enriching", total=None)
        while True:
            document = job_summary(env, job_id)
            done = document["status"] in _ENDED
            progress.update(
                task,
                total=document["progress"]["total"] or 1,
                completed=document["progress"]["processed"],
                description=f"enriching ({credit_amount(document['creditsUsed'])})",
            )
            if done or not running():
                break
            time.sleep(0.5)


def job_summary(env: Environment, job_id: str) -> dict[str, Any]:
    from leads_pipeline.lib.enrichment.jobs import summary
    from leads_pipeline.lib.store.db import connect

    def read() -> dict[str, Any]:
        with connect(env.database_url) as conn:
            return summary(conn, job_id)

    return run_or_fail(read)


def _print_ended(document: dict[str, Any], *, as_json: bool) -> None:
    """The summary of a job this command ran to its end. One that failed (no source completed: the whole run
    failed, or every source did) then exits 1 with its reason, as a failed sync does: `leads enrich --wait &&
    next-step` went on after it, and a cron job's mail did not say. A partial one is work done in part: exit 0."""
    if document["status"] != "failed":
        print_json(document) if as_json else _print_summary(document)
        return
    if not as_json:
        _print_summary(document)
    notes = [source["note"] for source in document["sources"] if source["status"] == "failed" and source["note"]]
    reason = document.get("failure") or (notes[0] if notes else "no source completed")
    fail(f"enrichment job {document['jobId']} failed: {reason} (`leads jobs show {document['jobId']}`)")


def _print_summary(document: dict[str, Any]) -> None:
    progress, results = document["progress"], document["results"]
    print_line(  # one line for a log to grep, as the sync's
        "job ",
        (document["jobId"], "bold"),
        f": {document['status']}, {progress['processed']:,}/{progress['total']:,} ({progress['percentage']}%),"
        f" {credit_amount(document['creditsUsed'])} used"
        + (f", ETA {document['eta']:.0f} s" if "eta" in document else ""),
    )
    print_line(f"enriched {results['enriched']:,}, no data {results['noDataFound']:,}, failed {results['failed']:,}")
    table = Table("source", "status", "processed", "note")
    lines = []
    for source in document["sources"]:
        processed = f"{source['processed']:,}/{source['total']:,}"
        table.add_row(source["source"], source["status"], processed, source["note"] or "")
        # narrower than the table (80 columns: cron's mail of `leads enrich --wait`) the note saying why a source
        # stopped was broken over lines and cut: each source takes two lines, every value whole
        lines.append((f"{source['source']}: {source['status']}, {processed} processed", source["note"] or "no note"))
    print_table(table, lines)
    b = document["breakdown"]
    print_line(
        f"email {b['email']['found']} found / {b['email']['verified']} verified, phone {b['phone']['found']} found / "
        f"{b['phone']['mobile']} mobile, linkedin {b['linkedin']['found']}, company {b['company']['found']}"
    )


@jobs_app.command("show")
def jobs_show(
    job_id: str,
    wait: Annotated[
        bool, typer.Option(help="Wait until the job ends (a live progress bar on a terminal), then show it.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the PRD's JSON shape.")] = False,
) -> None:
    """Progress, results, breakdown, credits and ETA of an enrichment job (yours, or one whose lists you read)."""
    from leads_pipeline.lib.store import enrichment as store
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def check() -> None:
        with connect(env.database_url) as conn:
            store.require_job_reader(conn, job_id, acting_user())

    run_or_fail(check)
    document = job_summary(env, job_id)
    if document["status"] == "interrupted":  # its killed run left Dagster showing it running
        from leads_pipeline.defs.enrichment.jobs import cancel_killed_runs

        run_or_fail(lambda: cancel_killed_runs(env.database_url, job_id))
    if wait and document["status"] in ("queued", "processing"):
        # with --json too: a script following a job started in the background got "queued" at once
        _follow(env, job_id, lambda: True, quiet=as_json)
        document = job_summary(env, job_id)
    print_json(document) if as_json else _print_summary(document)


@jobs_app.command("list", hidden=True)  # as `imports list` and `merges list` name it
@jobs_app.command("ls")
def jobs_ls(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The most recent enrichment jobs you started or whose lists you read."""
    from leads_pipeline.lib.enrichment.jobs import launch_response
    from leads_pipeline.lib.store import enrichment as store
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)
    with connect(env.database_url) as conn:
        jobs = store.recent_jobs(conn, acting_user())
    if as_json:
        # the launch's shape and when the job was made, which the table shows: a script picking the newest
        # finished job of a template had only the id's timestamp to go by
        print_json([{**launch_response(j), "createdAt": j.created_at.isoformat()} for j in jobs])
        return
    rows = [
        (
            job.id,
            job.status,
            f"{job.leads_queued:,}",
            ",".join(job.sources),
            job.template,
            f"{job.created_at:%Y-%m-%d %H:%M}",
        )
        for job in jobs
    ]
    table = Table("job", "status", "leads", "sources", "template", "created")
    for row in rows:
        table.add_row(*row)
    # The id is what `leads jobs show` takes: on its own line where the table does not fit
    print_table(
        table,
        [
            (
                job_id,
                f"{status}, {counted(job.leads_queued, 'lead')}, {sources}, template {template}, created {created}",
            )
            for job, (job_id, status, _, sources, template, created) in zip(jobs, rows, strict=True)
        ],
    )


@jobs_app.command("resume")
def jobs_resume(
    job_id: str,
    wait: Annotated[bool, typer.Option(help="Run it here and show a live progress bar until the job ends.")] = False,
) -> None:
    """Go on with an interrupted enrichment job (its process was killed, or Ctrl-C stopped `--wait`): its sources
    run again over its leads, in the background as `leads enrich` runs them. Needs the editor role on the job's
    lists; a job still running is refused, as is one a Dagster run is queued to run."""
    from leads_pipeline.defs.enrichment.jobs import require_resumable
    from leads_pipeline.lib.store import enrichment as store
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)
    status = run_or_fail(lambda: _runnable_job(env, job_id).status)
    if status != "interrupted":
        running = {"queued": "has not started yet", "processing": "is still running"}.get(status, f"ended {status}")
        fail(f"enrichment job {job_id} {running}: only an interrupted job is resumed (`leads jobs show {job_id}`)")
    with connect(env.database_url, autocommit=True) as keeper:
        run_or_fail(lambda: store.claim_job(keeper, job_id))  # a resume started meanwhile runs it
        run_or_fail(lambda: require_resumable(env.database_url, job_id))  # a Dagster run does
        if wait:
            _run_with_progress(env, job_id, quiet=False)
            _print_ended(job_summary(env, job_id), as_json=False)
            return
        _spawn(env, job_id, keeper)
    print_line("job ", (job_id, "bold"), f" resumed. Follow it with `leads jobs show {job_id}`.")


@jobs_app.command("run", hidden=True)
def jobs_run(
    job_id: str,
    handover: Annotated[
        bool, typer.Option(help="Wait for the process that started this one to hand the job over.")
    ] = False,
) -> None:
    """Run a created job to its end in this process (what `leads enrich` starts in the background). Needs the
    editor role on the job's lists, as `leads enrich` does."""
    from leads_pipeline.lib.store import enrichment as store
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)
    with connect(env.database_url, autocommit=True) as keeper:
        run_or_fail(lambda: _runnable_job(env, job_id))
        run_or_fail(lambda: store.claim_job(keeper, job_id, handover=handover))
        run_or_fail(lambda: execute_job(env, job_id, claimed=True, log_level="ERROR"))  # to the job's log file


def _runnable_job(env: Environment, job_id: str) -> Job:
    """The job, once the acting user may run it (the editor role on its lists)."""
    from leads_pipeline.lib.store import enrichment as store
    from leads_pipeline.lib.store.db import connect

    with connect(env.database_url) as conn:
        return store.require_job_runner(conn, job_id, acting_user())


@templates_app.command("list", hidden=True)  # as `imports list` and `merges list` name it
@templates_app.command("ls")
def templates_ls(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The shipped templates."""
    from leads_pipeline.lib.enrichment.templates import builtin_templates

    templates = run_or_fail(builtin_templates)
    if as_json:
        print_json([t.as_json() for t in templates.values()])
        return
    table = Table("template", "providers", "max credits per lead", "description")
    lines = []
    for t in templates.values():
        cap = "-" if t.max_credits_per_lead is None else plain_number(t.max_credits_per_lead)
        table.add_row(t.name, ", ".join(t.providers()), cap, t.description)
        # narrower than the table (80 columns: a pipe, a log) the providers and description were cut to a word:
        # each template takes two lines, every value whole
        most = "no cap per lead" if t.max_credits_per_lead is None else f"at most {cap} per lead"
        lines.append((f"{t.name}: {t.description}", f"providers {', '.join(t.providers())}, credits {most}"))
    print_table(table, lines)


@templates_app.command("show")
def templates_show(
    name: str,
    as_yaml: Annotated[
        bool, typer.Option("--yaml", help="Print the template's file as written, to copy and edit as your own.")
    ] = False,
) -> None:
    """A template's waterfall per field, as JSON (a shipped name or a YAML file); --yaml prints its file."""
    from leads_pipeline.lib.enrichment.templates import load_template

    template = run_or_fail(lambda: load_template(name))
    if as_yaml:
        # the JSON is the resolved waterfall (every field's providers, camelCase keys, the file's path), which
        # `templates validate` does not take as a template file: the file is what a user starts their own from
        sys.stdout.write(template.path.read_text(encoding="utf-8"))
        return
    print_json(template.as_json())


@templates_app.command("validate")
def templates_validate(path: Path) -> None:
    """Check a template file; prints the first problem with its key path, or OK."""
    from leads_pipeline.lib.enrichment.templates import load_template_file

    template = run_or_fail(lambda: load_template_file(path))
    # the stages it runs, and the company providers only when it runs the company stage: a template of the phone
    # and LinkedIn stages alone said "providers " followed by nothing
    said = [f"sources {', '.join(template.sources)}"]
    if "company" in template.sources:
        said.append(f"company providers {', '.join(template.providers())}")
    print_line(f"{path}: OK (template {template.name}, {'; '.join(said)})")


def credits(
    by: Annotated[str, typer.Option(help="Group by source, job or month.")] = "source",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Credits spent on the lists you can read, from the ledger (every charged provider call). Spending survives
    deleting its leads or its list: a deleted list's charges are in no row, but still count in this month's total,
    which is everyone's (LEADS_MONTHLY_CREDITS caps it) and says how much of it no row shows."""
    from leads_pipeline.lib.enrichment.jobs import monthly_budget
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store import enrichment as store
    from leads_pipeline.lib.store.db import connect

    env = run_or_fail(environment)

    def report() -> dict[str, Any]:
        with connect(env.database_url) as conn:
            user = acting_user()
            spent = store.credits_this_month(conn)
            listed = store.credits_this_month(conn, list_ids=access.readable_list_ids(conn, user))
            return {
                "by": by,
                "rows": store.credit_report(conn, by, user),
                "thisMonth": spent,
                "thisMonthInNoRow": round(spent - listed, 4),  # the ledger's decimals, without float residue
                "monthlyBudget": monthly_budget(),
            }

    document = run_or_fail(report)
    if as_json:
        print_json(document)
        return
    table = Table(by, "credits", "charges")
    lines = []
    for row in document["rows"]:
        table.add_row(str(row[by]), plain_number(row["credits"]), str(row["charges"]))
        # narrower than the table (80 columns: a pipe, cron's mail) a job's id or a long source was cut: each
        # row takes two lines, every value whole
        lines.append((str(row[by]), f"{credit_amount(row['credits'])}, {counted(row['charges'], 'charge')}"))
    print_table(table, lines)
    budget = document["monthlyBudget"]
    spent = document["thisMonth"]
    total = credit_amount(spent) if budget is None else f"{plain_number(spent)} of {credit_amount(budget)}"
    unlisted = document["thisMonthInNoRow"]
    elsewhere = (
        f", {plain_number(unlisted)} of them on lists deleted since or that you cannot read (in no row)"
        if unlisted
        else ""
    )
    print_line(f"this month: {total}{elsewhere}")  # one line (80 columns broke it)


def enrich_after_import(
    list_name: str,
    off: Annotated[bool, typer.Option("--off", help="Stop enriching this list's imports.")] = False,
    sources: Annotated[
        str | None, typer.Option(help="Sources to run after each import; default: the template's.")
    ] = None,
    template: Annotated[str, typer.Option(help="Template for those runs.")] = "standard",
    # low: the sensor starts these runs with nobody launching them, as the drop folder's imports and the
    # schedules' runs (BACKGROUND_PRIORITY); at normal, the paid runs of 50 files imported at once queued a run
    # launched meanwhile from the UI behind them
    priority: Annotated[
        str, typer.Option(help="Run priority: low (queued after the runs people launch), normal or high.")
    ] = "low",
    max_credits: MaxCredits = None,
    notify: Annotated[str | None, typer.Option(help="Webhook URL for each job's summary.")] = None,
) -> None:
    """Turn enrichAfterImport on (or --off) for a list: the sensor enriches each new import of it."""
    from leads_pipeline.lib.enrichment.providers import parse_sources
    from leads_pipeline.lib.enrichment.templates import load_template
    from leads_pipeline.lib.store import access
    from leads_pipeline.lib.store import enrichment as store
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import get_list

    env = run_or_fail(environment)

    def save() -> tuple[str, list[str]]:
        chosen = parse_sources(sources) if sources is not None else list(load_template(template).sources)
        load_template(template)
        _check_priority(priority)
        _check_max_credits(max_credits)
        _check_notify(notify)
        with connect(env.database_url) as conn:
            lead_list = get_list(conn, list_name, acting_user())
            access.require(conn, lead_list.id, acting_user(), "editor", "enriching its imports")
            store.set_list_settings(
                conn,
                lead_list.id,
                enrich_after_import=not off,
                sources=chosen,
                template=template,
                priority=priority,
                max_credits=max_credits,
                notify_url=notify,
            )
            return lead_list.name, chosen

    name, chosen = run_or_fail(save)
    state = "off" if off else f"on ({','.join(chosen)}, template {template}, priority {priority})"
    print_line("enrichAfterImport for list ", (name, "bold"), f": {state}")
