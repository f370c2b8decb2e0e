"""Shared by the CRM tests: a list of leads, a connection, an engine wired to the sandbox emulator."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from leads_pipeline.lib.crm.connection import Connection, parse_connection
from leads_pipeline.lib.crm.registry import limiter_for, resource_from_env
from leads_pipeline.lib.crm.sync import RetrySettings, SyncEngine, SyncReport
from leads_pipeline.lib.store import crm as store
from leads_pipeline.lib.store.db import connect, transaction
from leads_pipeline.lib.store.lists import ensure_list
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.support import import_file

MAPPINGS: dict[str, dict[str, Any]] = {
    "pipedrive": {
        "email": "email",
        "first_name": "first_name",
        "last_name": "last_name",
        "title": "job_title",
        "company": "Company",
    },
    "gohighlevel": {
        "email": "email",
        "first_name": "firstName",
        "last_name": "lastName",
        "company": "companyName",
        "title": "Job Title",
    },
    "salesforce": {
        "id": "Leads_Id__c",
        "email": "Email",
        "first_name": "FirstName",
        "last_name": "LastName",
        "company": "Company",
        "title": "Title",
    },
    "hubspot": {
        "email": "email",
        "first_name": "firstname",
        "last_name": "lastname",
        "company": "company",
        "title": "jobtitle",
    },
}


def email_of(i: int) -> str:
    """The email of row ``i`` of ``lead_rows``."""
    return f"ann{i}@example{i % 7}.com"


def lead_rows(count: int, start: int = 0) -> list[dict[str, str]]:
    return [
        {
            "First Name": f"Ann{i}",
            "Last Name": f"Lee{i}",
            "Email": email_of(i),
            "Company": f"Acme {i % 11}",
            "Title": "Engineer",
        }
        for i in range(start, start + count)
    ]


def import_leads(database_url: str, tmp_path: Path, rows: list[dict[str, str]], list_name: str = "prospects") -> int:
    """Import ``rows`` into ``list_name``; returns the list id."""
    path = tmp_path / f"leads-{len(rows)}-{list_name}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with transaction(database_url) as conn:
        ensure_list(conn, list_name, owner="tester")
    import_file(database_url, path, list_name)
    with connect(database_url) as conn:
        row = conn.execute("SELECT id FROM lists WHERE name = %s", (list_name,)).fetchone()
    assert row is not None
    return int(row["id"])


def push_killed_after_sending(
    database_url: str, sandbox: Sandbox, conn: Connection, list_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Push the list and die (a kill, Ctrl-C) as soon as the CRM has the records, before the links are recorded."""
    killed = engine(database_url, sandbox, conn)
    push = killed.connector.push

    def push_then_die(records: Any) -> Any:
        push(records)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(killed.connector, "push", push_then_die)
    with pytest.raises(KeyboardInterrupt):
        killed.run("push", list_id)


def connection(crm: str, name: str | None = None, **settings: Any) -> Connection:
    data: dict[str, Any] = {"crm": crm, "mapping": MAPPINGS[crm], "direction": "bidirectional", **settings}
    data.setdefault("rate_limit", {"requests": 1000, "per_seconds": 1})  # tests are not about the pacing
    if crm == "salesforce":
        data.setdefault("match_key", "id")
    return parse_connection(name or f"{crm}-test", data)


def engine(database_url: str, sandbox: Sandbox, conn: Connection, **env: str) -> SyncEngine:
    resource = resource_from_env(conn.crm, {**sandbox.env(), **env})
    limiter = limiter_for(conn)
    return SyncEngine(
        database_url,
        conn,
        resource.connector(conn, limiter),
        limiter,
        user="tester",
        retry=RetrySettings(attempts=6, backoff_base_s=0.01, backoff_max_s=0.05),
    )


def pushed(
    database_url: str, sandbox: Sandbox, tmp_path: Path, conn: Connection, leads: int, start: int, **env: str
) -> tuple[int, list[dict[str, Any]]]:
    """``leads`` leads from ``start`` imported and pushed through ``conn``: the list and the links, oldest lead
    first (the set-up of each test of what the CRM side does to records between two pushes)."""
    list_id = import_leads(database_url, tmp_path, lead_rows(leads, start=start))
    engine(database_url, sandbox, conn, **env).run("push", list_id)
    with connect(database_url) as db:
        return list_id, store.links(db, conn.name)


def pushed_again(
    database_url: str, sandbox: Sandbox, conn: Connection, list_id: int, **env: str
) -> tuple[SyncReport, list[dict[str, Any]], dict[int, str]]:
    """The next push of ``list_id``: its report, the outcomes it recorded and each lead's link after it."""
    report = engine(database_url, sandbox, conn, **env).run("push", list_id)
    with connect(database_url) as db:
        errors = store.run_errors(db, report.sync_id)
        links = {link["lead_id"]: link["remote_id"] for link in store.links(db, conn.name)}
    return report, errors, links
