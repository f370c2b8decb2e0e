"""``leads enrich`` and friends as a user runs them, against the sandbox and a real Dagster instance."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from leads_pipeline.cli import app
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.support import cli_environment, import_file


@pytest.fixture
def leads(database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    cli_environment(monkeypatch, database_url, tmp_path / "home", extra=sandbox.env())
    monkeypatch.delenv("LEADS_MONTHLY_CREDITS", raising=False)
    monkeypatch.delenv("LEADS_WEBHOOK_URL", raising=False)
    return CliRunner()


@pytest.fixture
def prospects(database_url: str, world_leads_csv: Path) -> list[int]:
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
    import_file(database_url, world_leads_csv)
    with connect(database_url) as conn:
        return [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id")]


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012 - one server per test

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/enrich?token=s3cret", received
    server.shutdown()
    server.server_close()


def _run(runner: CliRunner, *args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, f"leads {' '.join(args)}: {result.stderr or result.output}"
    return result


def _json(runner: CliRunner, *args: str) -> Any:
    return json.loads(_run(runner, *args).stdout)


def _error(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_estimate_then_enrich_a_list_and_show_the_job(
    leads: CliRunner, prospects: list[int], database_url: str, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    plan = _json(leads, "enrich", "--list", "prospects", "--sources", "company", "--estimate", "--json")
    assert plan["leads"] == 300 and plan["sources"]["company"]["lookups"] > 0
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM enrichment_jobs").fetchone() == {"n": 0}

    document = _json(
        leads, "enrich", "--list", "prospects", "--sources", "company", "--wait", "--json", "--notify", url
    )

    assert document["status"] == "completed"
    assert document["progress"] == {"processed": 300, "total": 300, "percentage": 100.0}
    assert document["results"]["enriched"] == 300 - document["results"]["noDataFound"] - document["results"]["failed"]
    assert document["results"]["enriched"] >= 280
    assert document["breakdown"]["company"]["found"] == document["results"]["enriched"]
    assert document["creditsUsed"] == plan["estimatedCredits"]  # every lookup the estimate expected, and no more
    assert "completedAt" in document and "eta" not in document
    shown = _json(leads, "jobs", "show", document["jobId"], "--json")
    assert shown["creditsUsed"] == document["creditsUsed"]
    [payload] = received
    assert payload["event"] == "enrichment.completed" and payload["jobId"] == document["jobId"]
    with connect(database_url) as conn:
        delivery = conn.execute("SELECT url, delivered, status_code FROM webhook_deliveries").fetchone()
    assert delivery == {"url": url.split("?")[0] + "?…", "delivered": True, "status_code": 204}

    credits = _json(leads, "credits", "--by", "job", "--json")
    assert credits["rows"] == [
        {"job": document["jobId"], "credits": document["creditsUsed"], "charges": credits["rows"][0]["charges"]}
    ]
    attribution = _json(leads, "show", str(prospects[0]), "--facts", "--json")
    industry = next(f for f in attribution["facts"] if f["field"] == "industry")
    assert industry["facts"][0]["source"] == "company/gemini" and industry["facts"][0]["won"]


def test_max_credits_stops_spending_at_the_cap(leads: CliRunner, prospects: list[int], tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(map(str, prospects)) + "\n")

    document = _json(leads, "enrich", "--ids", str(ids), "--max-credits", "3", "--wait", "--json")

    assert document["creditsUsed"] == 3.0
    assert document["status"] == "partial"
    [company] = document["sources"]
    assert company["status"] == "skipped" and "--max-credits 3" in company["note"]


def test_max_credits_caps_the_contact_sources_too(
    leads: CliRunner, prospects: list[int], database_url: str, tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(map(str, prospects)))
    plan = _json(leads, "enrich", "--ids", str(ids), "--sources", "phone,linkedin", "--estimate", "--json")
    assert plan["sources"]["phone"]["estimatedCredits"] == plan["sources"]["phone"]["leadsNeeding"] * 2.0
    assert plan["estimatedCredits"] > 5

    document = _json(
        leads, "enrich", "--ids", str(ids), "--sources", "phone,linkedin", "--max-credits", "5", "--wait", "--json"
    )

    assert 0 < document["creditsUsed"] <= 5 and document["status"] == "partial"
    stopped = [s for s in document["sources"] if s["status"] == "skipped"]
    assert stopped and all("--max-credits 5" in s["note"] and "paid lookups not made" in s["note"] for s in stopped)
    with connect(database_url) as conn:
        costs = [
            float(r["cost"])
            for r in conn.execute("SELECT cost FROM lead_facts WHERE batch_id = %s AND cost > 0", (document["jobId"],))
        ]
    assert set(costs) <= {1.0, 2.0}  # credits from the price list, never a provider's dollars


def test_max_credits_per_lead_caps_each_lead_over_all_the_stages(
    leads: CliRunner, prospects: list[int], database_url: str, tmp_path: Path
) -> None:
    """A cap of 2 lets the email stage buy a people search (2) for a lead, then refuses that lead's Twilio lookup
    (1) in the phone stage; leads the email stage charged nothing still get theirs."""
    template = tmp_path / "capped.yaml"
    template.write_text("name: capped\nsources: [email, phone]\nmax_credits_per_lead: 2\n")

    document = _json(leads, "enrich", "--list", "prospects", "--template", str(template), "--wait", "--json")

    with connect(database_url) as conn:
        facts = list(
            conn.execute(
                "SELECT lead_id, field, source, cost, details FROM lead_facts WHERE batch_id = %s", (document["jobId"],)
            )
        )
        ledger = conn.execute(
            "SELECT coalesce(sum(credits), 0) AS c FROM credit_ledger WHERE job_id = %s", (document["jobId"],)
        ).fetchone()
    assert ledger is not None
    email_spent: dict[int, float] = {}
    for f in facts:
        if f["field"] == "email_status" or (f["field"] == "person_match" and f["details"]["stage"] == "email"):
            email_spent[f["lead_id"]] = email_spent.get(f["lead_id"], 0.0) + float(f["cost"])
    typed = {f["lead_id"] for f in facts if f["field"] == "phone_line_type"}
    wanted = {  # numbers the plan cannot type (US/CA), which the phone stage asks Twilio about
        f["lead_id"]
        for f in facts
        if f["field"] == "phone" and f["details"].get("valid") and f["details"]["region"] in ("US", "CA")
    }
    capped = {lead for lead in wanted if email_spent.get(lead, 0.0) == 2.0}
    free = wanted - set(email_spent)
    assert capped and free
    assert not capped & typed, "the phone lookup of a lead at its cap is skipped"
    assert free <= typed, "leads with room are looked up as before"
    per_lead: dict[int, float] = {}
    for f in facts:
        per_lead[f["lead_id"]] = per_lead.get(f["lead_id"], 0.0) + float(f["cost"])
    assert max(per_lead.values()) <= 2.0
    phone = next(s for s in document["sources"] if s["source"] == "phone")
    assert phone["status"] == "skipped" and document["status"] == "partial"
    assert phone["note"] == (
        f"leads reached template capped's max_credits_per_lead of 2: {len(capped)} paid lookups not made"
        f" for {len(capped)} leads"
    )
    assert document["creditsUsed"] == float(ledger["c"]) == round(sum(per_lead.values()), 4) > 0
    shown = _json(leads, "jobs", "show", document["jobId"], "--json")
    assert shown["creditsUsed"] == document["creditsUsed"] and shown["sources"] == document["sources"]


def test_the_estimate_stays_within_max_credits_per_lead(leads: CliRunner, prospects: list[int], tmp_path: Path) -> None:
    template = tmp_path / "one.yaml"
    template.write_text("name: one\nsources: [phone, linkedin]\nmax_credits_per_lead: 1\n")

    plan = _json(
        leads, "enrich", "--list", "prospects", "--template", str(template), "--overwrite", "--estimate", "--json"
    )

    worst = sum(s["maxCredits"] for s in plan["sources"].values())
    assert worst > plan["leads"] and plan["maxCredits"] == plan["leads"] * 1.0
    assert plan["estimatedCredits"] <= plan["leads"]


def test_the_template_chooses_the_sources_unless_sources_is_given(leads: CliRunner, prospects: list[int]) -> None:
    """premium's sources: [email, phone, linkedin, company] are run when --sources is not given."""
    premium = _json(leads, "enrich", "--list", "prospects", "--template", "premium", "--estimate", "--json")
    assert set(premium["sources"]) == {"email", "phone", "linkedin", "company"}
    standard = _json(leads, "enrich", "--list", "prospects", "--estimate", "--json")
    assert set(standard["sources"]) == {"company"}
    chosen = _json(
        leads, "enrich", "--list", "prospects", "--template", "premium", "--sources", "phone", "--estimate", "--json"
    )
    assert set(chosen["sources"]) == {"phone"}


def test_user_errors_are_one_line(leads: CliRunner, prospects: list[int], tmp_path: Path) -> None:
    assert "unknown source(s) fax" in _error(leads, "enrich", "--list", "prospects", "--sources", "fax")
    assert "list 'nope': not found or not shared with you" in _error(leads, "enrich", "--list", "nope")
    assert "say which leads to enrich" in _error(leads, "enrich")
    bad_ids = tmp_path / "ids.txt"
    bad_ids.write_text("1\nabc\n")
    assert "line 2: expected a lead id" in _error(leads, "enrich", "--ids", str(bad_ids))
    assert "no template named 'gold'" in _error(leads, "enrich", "--list", "prospects", "--template", "gold")
    assert "unknown field 'colour'" in _error(leads, "enrich", "--list", "prospects", "--where", "colour=red")
    assert "operator ~ does not apply to employee_count" in _error(
        leads, "enrich", "--list", "prospects", "--where", "employee_count ~ 5"
    )
    missing = tmp_path / "missing.txt"
    missing.write_text(f"{prospects[0]}\n999999\n")
    assert "1 lead id(s) do not exist, are deleted or are in lists you cannot read: 999999" in _error(
        leads, "enrich", "--ids", str(missing)
    )
    assert "holds no leads" in _error(leads, "enrich", "--list", "prospects", "--where", "country = ZZ")


def test_where_selects_exactly_what_search_selects(leads: CliRunner, prospects: list[int], database_url: str) -> None:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT country, count(*) AS n FROM leads GROUP BY country ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    filters = ["--where", f"country = {row['country']}", "--where", "title ~ e"]
    found = _json(leads, "search", "--list", "prospects", *filters, "--limit", "1000", "--json")["leads"]

    plan = _json(leads, "enrich", "--list", "prospects", *filters, "--sources", "email", "--estimate", "--json")
    launched = _json(leads, "enrich", "--list", "prospects", *filters, "--template", "basic", "--json")

    assert 0 < plan["leads"] == len(found) < row["n"] < 300
    with connect(database_url) as conn:
        members = [
            r["lead_id"]
            for r in conn.execute(
                "SELECT lead_id FROM batch_members WHERE batch_id = %s ORDER BY lead_id", (launched["jobId"],)
            )
        ]
    assert members == sorted(int(lead["id"]) for lead in found)
    assert launched["jobId"].startswith("enrich-prospects-")


def test_enriching_needs_the_editor_role(leads: CliRunner, prospects: list[int]) -> None:
    runner_env = {"LEADS_USER": "mallory"}
    result = leads.invoke(app, ["enrich", "--list", "prospects", "--estimate"], env=runner_env)
    assert result.exit_code == 1 and "list 'prospects': not found or not shared with you" in result.stderr
    _run(leads, "lists", "share", "prospects", "mallory", "--role", "viewer")
    result = leads.invoke(app, ["enrich", "--list", "prospects", "--estimate"], env=runner_env)
    assert result.exit_code == 1
    assert "enriching its leads needs the role editor or owner" in result.stderr
    result = leads.invoke(app, ["enrich-after-import", "prospects", "--template", "premium"], env=runner_env)
    assert result.exit_code == 1 and "enriching its imports needs the role editor or owner" in result.stderr
    _run(leads, "lists", "share", "prospects", "mallory", "--role", "editor")
    result = leads.invoke(app, ["enrich", "--list", "prospects", "--estimate", "--json"], env=runner_env)
    assert result.exit_code == 0 and json.loads(result.stdout)["leads"] == 300


def test_a_job_is_shown_to_its_starter_and_the_readers_of_its_lists(
    leads: CliRunner, prospects: list[int], tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{prospects[0]}\n")
    job = _json(leads, "enrich", "--ids", str(ids), "--wait", "--json")["jobId"]
    refused = leads.invoke(app, ["jobs", "show", job], env={"LEADS_USER": "mallory"})  # named the job's list
    unknown = leads.invoke(app, ["jobs", "show", f"{job}-x"], env={"LEADS_USER": "mallory"})
    assert refused.exit_code == unknown.exit_code == 1
    assert f"enrichment job {job!r}: not found or not shared with you" in refused.stderr
    assert refused.stderr == unknown.stderr.replace(f"{job}-x", job)
    listed = leads.invoke(app, ["jobs", "ls", "--json"], env={"LEADS_USER": "mallory"})
    assert json.loads(listed.stdout) == []
    _run(leads, "lists", "share", "prospects", "mallory", "--role", "viewer")
    shown = leads.invoke(app, ["jobs", "show", job, "--json"], env={"LEADS_USER": "mallory"})
    assert shown.exit_code == 0 and json.loads(shown.stdout)["jobId"] == job
    listed = leads.invoke(app, ["jobs", "ls", "--json"], env={"LEADS_USER": "mallory"})
    assert [j["jobId"] for j in json.loads(listed.stdout)] == [job]


def test_templates_commands(leads: CliRunner, tmp_path: Path) -> None:
    listing = _json(leads, "templates", "ls", "--json")
    assert [t["name"] for t in listing] == ["basic", "premium", "standard"]
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\ncompany:\n  fields:\n    industry: {sources: [apify_search]}\n")
    assert "apify_search cannot supply industry" in _error(leads, "templates", "validate", str(bad))


def test_the_monthly_budget_stops_spending_with_a_clear_message(
    leads: CliRunner, prospects: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "2")

    document = _json(leads, "enrich", "--list", "prospects", "--wait", "--json")

    assert document["creditsUsed"] == 2 and document["status"] == "partial"
    assert "monthly budget of 2 credits is used up" in document["sources"][0]["note"]
    message = _error(leads, "enrich", "--list", "prospects")
    assert "monthly budget of 2 credits is used up; raise LEADS_MONTHLY_CREDITS" in message
    free = _json(leads, "enrich", "--list", "prospects", "--template", "basic", "--wait", "--json")
    assert free["status"] == "completed" and free["creditsUsed"] == 0


def test_without_wait_the_job_runs_in_the_background(leads: CliRunner, prospects: list[int], database_url: str) -> None:
    launched = _json(leads, "enrich", "--list", "prospects", "--template", "basic", "--priority", "high", "--json")

    assert launched["status"] == "queued" and launched["leadsQueued"] == 300 and launched["estimatedCredits"] == 0
    deadline = time.monotonic() + 120
    document = _json(leads, "jobs", "show", launched["jobId"], "--json")
    while document["status"] in ("queued", "processing") and time.monotonic() < deadline:
        time.sleep(1)
        document = _json(leads, "jobs", "show", launched["jobId"], "--json")
    assert document["status"] == "completed", document
    assert document["progress"]["processed"] == 300
