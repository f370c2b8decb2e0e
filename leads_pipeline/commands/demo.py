"""``leads demo``: the whole pipeline on a shipped sample file, offline, and what each step did.

The demo starts the embedded PostgreSQL and the provider sandbox (serving the demo world whose people the sample
file lists), points the provider clients at the sandbox for the length of the run, then runs each stage through
Dagster with the very functions the stage's own command uses: import, enrichment of every source, duplicate
detection, scoring with the shipped configuration, and a push to the sandbox's HubSpot. Nothing here decides
anything the commands would not: it only chains them and reports what the database says they did.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from leads_pipeline.commands.common import acting_user, console, environment, print_line, run_or_fail
from leads_pipeline.lib.runtime import Environment
from leads_pipeline.lib.wording import counted, credit_amount, plain_number
from leads_pipeline.sandbox.cli import DemoDataDir

DEMO_MAPPING = {
    "email": "email",
    "first_name": "firstname",
    "last_name": "lastname",
    "title": "jobtitle",
    "company": "company",
    "phone": "phone",
    "website": "website",
    "country": "country",
    "linkedin_url": "hs_linkedin_url",
}


@contextmanager
def provider_settings(settings: Mapping[str, str]) -> Iterator[None]:
    """Set ``settings`` in the environment (where the provider resources read them) and restore the previous
    values afterwards, so the sandbox's endpoints and tokens never outlive the demo in this process."""
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _step(number: int, title: str) -> None:
    print_line("\n", (f"{number}. {title}", "bold"))


def _say(text: str) -> None:
    """One line of a step's report; long lines are left to the terminal to wrap (copyable ids stay whole)."""
    print_line(f"   {text}")


def _import(env: Environment, list_name: str, file: Path) -> dict[str, Any]:
    from leads_pipeline.cli import run_cli_import

    status = run_cli_import(
        env, file, list_name, on_duplicate="skip", mapping={}, default_region="US", show_progress=False
    )
    results = status["results"]
    _say(
        f"{status['progress']['processed']} rows read: {results['imported']} imported, "
        f"{results['skipped']} skipped (same email as a lead in the list or earlier in the file), "
        f"{results['errors']} rejected, {status['warnings']} warnings"
    )
    for problem in status["errors"]:
        if problem["severity"] == "error":
            _say(f"rejected row {problem['row']}: {problem['reason']}")
    return status


COVERAGE = {"email": "email", "phone": "phone", "linkedin_url": "LinkedIn", "industry": "industry",
            "employee_count": "employee count"}  # fmt: skip
"""The fields whose fill rate the demo shows before and after enrichment, with their names in the report."""


def coverage(database_url: str, list_name: str) -> dict[str, int]:
    """How many live leads of the list have each ``COVERAGE`` field: what enrichment changed, from the database."""
    from leads_pipeline.lib.store.db import connect

    counts = ", ".join(f"count({field}) AS {field}" for field in COVERAGE)
    with connect(database_url) as conn:
        row = conn.execute(
            f"SELECT {counts} FROM leads l JOIN lists s ON s.id = l.list_id WHERE s.name = %s AND l.deleted_at IS NULL",
            (list_name,),
        ).fetchone()
    assert row is not None
    return {field: int(row[field]) for field in COVERAGE}


def _enrich(env: Environment, list_name: str) -> dict[str, Any]:
    from leads_pipeline.commands import enrich as enrich_commands
    from leads_pipeline.lib.enrichment.providers import SOURCE_ASSETS
    from leads_pipeline.lib.filters import Selection
    from leads_pipeline.lib.store.db import connect

    before = coverage(env.database_url, list_name)
    with connect(env.database_url, autocommit=True) as keeper:
        _, job = enrich_commands.create_job(
            env,
            selection=Selection.build(lists=[list_name]),
            ids_file=None,
            sources=list(SOURCE_ASSETS),
            template_name="standard",
            overwrite=False,
            priority="normal",
            max_credits=None,
            notify_url=None,
            estimate_only=False,
            keeper=keeper,
        )
        enrich_commands.execute_job(env, job.id, claimed=True)
    document = enrich_commands.job_summary(env, job.id)
    after = coverage(env.database_url, list_name)
    results, b = document["results"], document["breakdown"]
    _say(
        f"job {document['jobId']} {document['status']}: {results['enriched']} leads enriched, "
        f"{results['noDataFound']} with nothing new, {results['failed']} failed"
    )
    for source in document["sources"]:  # why, which Dagster's log of a failed step said in a stack trace before
        if source["status"] != "completed":
            _say(f"{source['source']} {source['status']}: {source['note'] or 'no note'}")
    _say(f"{credit_amount(document['creditsUsed'])} used (estimate {plain_number(document['estimatedCredits'])})")
    filled = ", ".join(f"{name} {before[field]} -> {after[field]}" for field, name in COVERAGE.items())
    _say(f"leads with: {filled} (of {document['progress']['total']})")
    _say(
        f"{b['email']['verified']} emails verified deliverable, {b['phone']['mobile']} phones are mobile lines, "
        f"{b['company']['found']} companies profiled"
    )
    return document


def _dedupe(env: Environment, batch_id: str) -> int:
    from leads_pipeline.defs.dedupe.checks import batch_clusters
    from leads_pipeline.launcher import materialize_duplicates
    from leads_pipeline.lib.store.db import connect

    result = materialize_duplicates(batch_id, {"user": acting_user()})
    [materialization] = result.asset_materializations_for_node("duplicate_clusters")
    found = int(materialization.metadata["clusters"].value)  # type: ignore[arg-type]
    _say(f"{counted(found, 'cluster')} of duplicates among the imported leads (reported, not merged)")
    with connect(env.database_url) as conn:
        for cluster in batch_clusters(conn, batch_id, acting_user()):
            _say(
                f"cluster {cluster.number}: leads {', '.join(map(str, cluster.lead_ids))}, "
                f"score {cluster.score:.1f}: {', '.join(cluster.reasons)}"
            )
    return found


def _score(env: Environment, list_name: str) -> dict[str, Any]:
    from leads_pipeline.commands.score import run_cli_score
    from leads_pipeline.lib.store.db import connect

    document = run_cli_score(env.database_url, list_name)
    with connect(env.database_url) as conn:
        top = conn.execute(
            "SELECT l.id FROM leads l JOIN lists s ON s.id = l.list_id WHERE s.name = %s AND l.deleted_at IS NULL"
            " ORDER BY l.score DESC NULLS LAST, l.id LIMIT 1",
            (list_name,),
        ).fetchone()
    document["topLeadId"] = top["id"] if top else None
    bands, stages = document["distribution"], document["stages"]
    _say(
        f"{document['scored']} leads scored, average {document['averageScore']}: "
        f"{bands['hot']} hot, {bands['warm']} warm, {bands['cold']} cold"
    )
    _say(
        f"{stages.get('mql', 0)} MQL, {stages.get('sql', 0)} SQL; {document['stageChanges']} stage changes "
        f"(all stages: {', '.join(f'{count} {stage}' for stage, count in stages.items())})"
    )
    return document


def write_demo_connection(list_name: str) -> str:
    """Write the connection file (in the connections folder, by default ``$LEADS_HOME/crm``) that pushes
    ``list_name`` to the sandbox's HubSpot; return its name.

    Each run gets its own connection: its HubSpot lives only as long as the run's sandbox, so the record ids
    it hands out start over and must not meet the links an earlier run's connection keeps.
    """
    from leads_pipeline.lib.crm.connection import connections_folder

    folder = connections_folder()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{list_name}-hubspot"
    path = folder / f"{name}.yaml"
    settings = {"crm": "hubspot", "direction": "push", "list": list_name, "mapping": DEMO_MAPPING}
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return name


def _push(env: Environment, list_name: str) -> dict[str, Any]:
    from leads_pipeline.commands.crm import launch_sync
    from leads_pipeline.lib.store.crm import run_errors
    from leads_pipeline.lib.store.db import connect

    connection = write_demo_connection(list_name)
    report = launch_sync(env.database_url, connection, list_name, "push", [])
    _say(
        f"sync {report['syncId']} {report['status']}: {report['leadsToSync']} leads to push, {report['created']} "
        f"created, {report['updated']} updated, {report['failed']} failed, {report['invalid']} not sent "
        f"({counted(report['requests'], 'request')})"
    )
    with connect(env.database_url) as conn:
        problems = Counter(f"{row['category']}: {row['message']}" for row in run_errors(conn, int(report["syncId"])))
    for problem, count in problems.most_common():
        _say(f"{count} not sent: {problem}")
    return report


def demo(
    data_dir: DemoDataDir = None,
) -> None:
    """Run the whole pipeline (import, enrich, dedupe, score, CRM push) on the shipped sample file, offline
    against the provider sandbox, and say what each step did."""
    from leads_pipeline.lib.store.db import connect
    from leads_pipeline.lib.store.lists import create_list
    from leads_pipeline.sandbox.demo_world import DEMO_LEADS_FILE, demo_world
    from leads_pipeline.sandbox.server import Sandbox

    world = run_or_fail(lambda: demo_world(data_dir))  # before the database: missing sample data starts nothing
    env = run_or_fail(environment)
    where = f"embedded PostgreSQL in {env.home / 'postgres'}" if env.embedded else "the server in DATABASE_URL"
    _step(1, "database and provider sandbox")
    _say(f"{where}, migrations applied")
    with Sandbox.start(world) as sandbox, provider_settings(sandbox.env()):
        _say(
            f"sandbox on {sandbox.http_url}: {len(world.companies)} companies, {len(world.people)} people; "
            "Apify, Gemini, ZeroBounce, NeverBounce, Twilio, DNS, SMTP and the CRMs are emulated"
        )
        list_name = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        with connect(env.database_url) as conn:
            create_list(conn, list_name, owner=acting_user(), dedupe="email", description="leads_pipeline demo")
        _step(2, f"import {DEMO_LEADS_FILE.name} into the new list {list_name} (Dagster asset batch_leads)")
        status = run_or_fail(lambda: _import(env, list_name, DEMO_LEADS_FILE))
        _step(3, "enrich email, phone, LinkedIn and company, template standard (Dagster enrichment job)")
        job = run_or_fail(lambda: _enrich(env, list_name))
        _step(4, "duplicate detection (Dagster asset duplicate_clusters)")
        run_or_fail(lambda: _dedupe(env, status["batchId"]))
        _step(5, "scoring with the shipped configuration (Dagster asset lead_scores)")
        scores = run_or_fail(lambda: _score(env, list_name))
        _step(6, "push to the sandbox's HubSpot (Dagster assets crm_sync_plan, crm_sync)")
        report = run_or_fail(lambda: _push(env, list_name))
    console.print("\n[bold]next[/bold]", highlight=False)
    for command, why in (
        # `make dev` alone was named, which an install from a wheel has not
        ("leads dev", "the Dagster UI: every run above, with its metadata and checks (`make dev` in a checkout)"),
        (f"leads search --list {list_name} --stage mql", "the marketing-qualified leads"),
        (f"leads imports show {status['importId']}", "the import and its rejected row"),
        (f"leads jobs show {job['jobId']}", "the enrichment job, per source"),
        (f"leads show {scores['topLeadId']} --facts", "where each value of the best lead came from"),
        (f"leads show {scores['topLeadId']} --score-history", "its score, and why"),
        (f"leads dedupe --list {list_name} --merge", "merge the duplicates found"),
        (f"leads sync history --crm {report['connection']}", "the CRM push"),
        ("leads sandbox tour", "one call of every provider's client against the sandbox"),
    ):
        print_line(f"   {command}  ", (f"# {why}", "dim"))
