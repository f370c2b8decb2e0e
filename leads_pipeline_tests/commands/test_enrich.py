"""``leads enrich`` and friends as a user runs them, against the sandbox and a real Dagster instance."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin
from rich.console import Console
from typer.testing import CliRunner

from leads_pipeline.commands import common
from leads_pipeline.commands import enrich as enrich_commands
from leads_pipeline.definitions import defs
from leads_pipeline.defs.enrichment import assets as enrichment_assets
from leads_pipeline.defs.enrichment.assets import company_profiles
from leads_pipeline.defs.enrichment.sensors import enrich_after_import_sensor
from leads_pipeline.defs.executor import BACKGROUND_PRIORITY
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.gemini import GeminiResource
from leads_pipeline.lib.clients.mail import MailCheckResource
from leads_pipeline.lib.contacts.phone_batch import PhoneStage
from leads_pipeline.lib.enrichment.engine import CompanyEnricher
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.store import enrichment as store
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.wording import plain_number
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.support import (
    Leads,
    cli_environment,
    import_file,
    leads_in_fresh_interpreter,
    materialize_batch,
    receiver,
)


@pytest.fixture
def leads(database_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Leads:
    cli_environment(monkeypatch, database_url, tmp_path / "home", extra=sandbox.env())
    monkeypatch.delenv("LEADS_MONTHLY_CREDITS", raising=False)
    monkeypatch.delenv("LEADS_WEBHOOK_URL", raising=False)
    # The sandbox's "timeout" mail hosts never greet: a probe of one waits 2 s, as in the stage tests' resources,
    # not the 10 s default (an email stage of the world's 300 leads waited 25 s on them).
    check = MailCheckResource.check
    monkeypatch.setattr(MailCheckResource, "check", lambda self: dataclasses.replace(check(self), timeout_s=2.0))
    return Leads(CliRunner())


@pytest.fixture
def prospects(database_url: str, world_leads_csv: Path) -> list[int]:
    with connect(database_url) as conn:
        create_list(conn, "prospects", owner="tester")
    import_file(database_url, world_leads_csv)
    with connect(database_url) as conn:
        return [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id")]


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with receiver(status=204) as (url, received):
        yield f"{url}/hooks/enrich?token=s3cret", received


def test_estimate_then_enrich_a_list_and_show_the_job(
    leads: Leads, prospects: list[int], database_url: str, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    plan = leads.json("enrich", "--list", "prospects", "--sources", "company", "--estimate", "--json")
    assert plan["leads"] == 300 and plan["sources"]["company"]["lookups"] > 0
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM enrichment_jobs").fetchone() == {"n": 0}

    document = leads.json("enrich", "--list", "prospects", "--sources", "company", "--wait", "--json", "--notify", url)

    assert document["status"] == "completed"
    assert document["progress"] == {"processed": 300, "total": 300, "percentage": 100.0}
    assert document["results"]["enriched"] == 300 - document["results"]["noDataFound"] - document["results"]["failed"]
    assert document["results"]["enriched"] >= 280
    assert document["breakdown"]["company"]["found"] == document["results"]["enriched"]
    assert document["creditsUsed"] == plan["estimatedCredits"]  # every lookup the estimate expected, and no more
    assert "completedAt" in document and "eta" not in document
    shown = leads.json("jobs", "show", document["jobId"], "--json")
    assert shown["creditsUsed"] == document["creditsUsed"]
    [payload] = received
    assert payload["event"] == "enrichment.completed" and payload["jobId"] == document["jobId"]
    with connect(database_url) as conn:
        delivery = conn.execute("SELECT url, delivered, status_code FROM webhook_deliveries").fetchone()
    # the token may be in the path too: the host and the path's first segment are recorded
    assert delivery == {"url": url.split("/hooks/")[0] + "/hooks/…?…", "delivered": True, "status_code": 204}

    credits = leads.json("credits", "--by", "job", "--json")
    assert credits["rows"] == [
        {"job": document["jobId"], "credits": document["creditsUsed"], "charges": credits["rows"][0]["charges"]}
    ]
    attribution = leads.json("show", str(prospects[0]), "--facts", "--json")
    industry = next(f for f in attribution["facts"] if f["field"] == "industry")
    assert industry["facts"][0]["source"] == "company/gemini" and industry["facts"][0]["won"]


def test_where_values_came_from_is_shown_whole_at_80_columns(
    leads: Leads, prospects: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a pipe, a log) `leads show --facts` cut every column to a few letters ("company_…",
    "company/…", "2026-11-…"), and which value came from where could not be read. There each fact takes two
    lines, every value whole; a wide terminal keeps the table."""
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{prospects[0]}\n")
    leads.ok("enrich", "--ids", str(ids), "--sources", "company", "--wait")
    lead = str(prospects[0])
    attribution = {f["field"]: f["facts"] for f in leads.json("show", lead, "--facts", "--json")["facts"]}
    monkeypatch.setattr(common, "console", Console(width=80))
    shown = leads.ok("show", lead, "--facts").splitlines()
    at = shown.index("where values came from:")
    assert len(shown) == at + 1 + 2 * sum(map(len, attribution.values()))
    for field in ("industry", "company_domain"):
        line = at
        for fact in attribution[field]:  # the winner, then the losers, each value on its own line
            line = shown.index(f"{field}: {fact['value']}", line + 1)
            won = "won" if fact["won"] else f"lost ({fact['note']})"
            assert shown[line + 1] == (
                f"  {fact['source']}, confidence {fact['confidence']}, cost {plain_number(fact['cost'])},"
                f" observed {fact['observedAt'][:19]}, {won}"
            )
    assert [f["won"] for f in attribution["company_domain"]] == [True, False]  # the loser's line says why
    monkeypatch.setattr(common, "console", Console(width=300))
    assert "┃ field " in leads.ok("show", lead, "--facts")  # the table


def test_max_credits_stops_spending_at_the_cap(
    leads: Leads, prospects: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(map(str, prospects)) + "\n")

    document = leads.json("enrich", "--ids", str(ids), "--max-credits", "3", "--wait", "--json")

    assert document["creditsUsed"] == 3.0
    assert document["status"] == "partial"
    [company] = document["sources"]
    assert company["status"] == "skipped" and "--max-credits 3" in company["note"]
    # at 80 columns (cron's mail) the table broke the note over lines and cut it: two lines a source, the note whole
    monkeypatch.setattr(common, "console", Console(width=80))
    shown = leads.ok("jobs", "show", document["jobId"]).splitlines()
    at = shown.index(f"company: skipped, {company['processed']:,}/{company['total']:,} processed")
    assert shown[at + 1] == f"  {company['note']}"


def test_max_credits_caps_the_contact_sources_too(
    leads: Leads, prospects: list[int], database_url: str, tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(map(str, prospects)))
    plan = leads.json("enrich", "--ids", str(ids), "--sources", "phone,linkedin", "--estimate", "--json")
    assert plan["sources"]["phone"]["estimatedCredits"] == plan["sources"]["phone"]["leadsNeeding"] * 2.0
    assert plan["estimatedCredits"] > 5

    document = leads.json(
        "enrich", "--ids", str(ids), "--sources", "phone,linkedin", "--max-credits", "5", "--wait", "--json"
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
    leads: Leads, prospects: list[int], database_url: str, tmp_path: Path
) -> None:
    """A cap of 2 lets the email stage buy a people search (2) for a lead, then refuses that lead's Twilio lookup
    (1) in the phone stage; leads the email stage charged nothing still get theirs."""
    template = tmp_path / "capped.yaml"
    template.write_text("name: capped\nsources: [email, phone]\nmax_credits_per_lead: 2\n")

    document = leads.json("enrich", "--list", "prospects", "--template", str(template), "--wait", "--json")

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
    shown = leads.json("jobs", "show", document["jobId"], "--json")
    assert shown["creditsUsed"] == document["creditsUsed"] and shown["sources"] == document["sources"]


def test_a_company_estimate_loads_neither_dagster_nor_the_provider_clients(leads: Leads, prospects: list[int]) -> None:
    """`leads enrich --estimate` took 257 MB and 2 s of CPU, most of it loading every asset's module (to check
    the sources' assets are deployed, which matters to a launch only), Dagster, google-genai and the Apify client
    (the company engine's and the contact stages' client types): an estimate asks no provider. It runs here in a
    fresh interpreter as a user runs it, and says what the in-process estimate says."""
    args = ["enrich", "--list", "prospects", "--sources", "company", "--estimate", "--json"]
    estimate, loaded = leads_in_fresh_interpreter(
        [args], ("dagster", "google.genai", "apify_client", "httpx", "pandera", "leads_pipeline.definitions")
    )
    assert loaded == []
    assert json.loads(estimate) == leads.json(*args)


def test_the_email_and_linkedin_estimates_load_neither_dagster_nor_the_apify_client(
    leads: Leads, prospects: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads enrich --sources email --estimate` and `--sources linkedin --estimate` took 112 MB and 1.4 s of CPU,
    most of it Dagster and apify-client, loaded by the modules of the Apify, HTTP and mail clients for plain
    records and settings (the stages' cache_days, whether SMTP probing is on, which paid verifier is
    configured). With probing off the email estimate asks which verifier answers every check; both run here in
    one fresh interpreter, as a user runs them, and say what the in-process estimates say."""
    monkeypatch.setenv("LEADS_SMTP_PROBING", "off")
    commands = [
        ["enrich", "--list", "prospects", "--sources", s, "--estimate", "--json"] for s in ("email", "linkedin")
    ]
    output, loaded = leads_in_fresh_interpreter(
        commands, ("dagster", "apify_client", "google.genai", "pandas", "leads_pipeline.definitions")
    )
    assert loaded == []
    email, end = json.JSONDecoder().raw_decode(output)
    assert [email, json.loads(output[end:])] == [leads.json(*args) for args in commands]
    assert "unverifiedAddresses" in email["sources"]["email"]


def test_the_jobs_credits_and_templates_commands_load_no_pandas(
    leads: Leads, prospects: list[int], database_url: str
) -> None:
    """`leads jobs ls`, `leads jobs show`, `leads credits` and `leads templates ls` loaded pandas and pyarrow (the
    company engine and its validation, for the company fields' names and the estimate's types): 150 MB and 0.7 s
    of CPU to print a table, now 60 MB and 0.33 s. They run here in one fresh interpreter, as a user runs them."""
    leads.ok("enrich", "--list", "prospects", "--sources", "company", "--template", "basic", "--wait")
    with connect(database_url) as conn:
        job_id = conn.execute("SELECT id FROM enrichment_jobs").fetchone()["id"]  # type: ignore[index]
    commands = [
        ["jobs", "ls"],
        ["jobs", "show", job_id],
        ["credits"],
        ["templates", "ls"],
        ["templates", "show", "premium"],
    ]
    _, loaded = leads_in_fresh_interpreter(
        commands, ("pandas", "pyarrow", "pandera", "dagster", "google.genai", "apify_client")
    )
    assert loaded == []


def test_the_estimate_stays_within_max_credits_per_lead(leads: Leads, prospects: list[int], tmp_path: Path) -> None:
    template = tmp_path / "one.yaml"
    template.write_text("name: one\nsources: [phone, linkedin]\nmax_credits_per_lead: 1\n")

    plan = leads.json(
        "enrich", "--list", "prospects", "--template", str(template), "--overwrite", "--estimate", "--json"
    )

    worst = sum(s["maxCredits"] for s in plan["sources"].values())
    assert worst > plan["leads"] and plan["maxCredits"] == plan["leads"] * 1.0
    assert plan["estimatedCredits"] <= plan["leads"]


def test_the_estimate_is_shown_whole_at_80_columns(
    leads: Leads, prospects: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a pipe, cron's mail) the estimate's lines were broken at the width: its template's name
    from 'Nothing was launched', the budget's note saying the job would end partial over two lines, so a cron
    check grepping for either found nothing. Each is one line, however long; the table fits and stays."""
    name = "q3-emea-trade-fair-phone-and-linkedin-waterfall"
    template = tmp_path / "fair.yaml"
    template.write_text(f"name: {name}\nsources: [phone, linkedin]\n")
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "100")
    args = ("enrich", "--list", "prospects", "--template", str(template), "--estimate")
    plan = leads.json(*args, "--json")
    assert "would end partial" in plan["monthlyBudget"]["note"]
    narrow = Console(width=80)  # the table and the summary lines, as a pipe has them whatever the terminal
    monkeypatch.setattr(common, "console", narrow)
    monkeypatch.setattr(enrich_commands, "console", narrow)
    shown = leads.ok(*args).splitlines()
    assert shown[0].strip() == "estimate" and shown[1].startswith("┏")  # the table
    assert shown[-2].startswith(f"{plan['leads']} leads, template {name}: ~")
    assert shown[-2].endswith(". Nothing was launched.")
    assert shown[-1].startswith("monthly budget of 100 credits: ")
    assert shown[-1].endswith(f"; {plan['monthlyBudget']['note']}")
    # narrower than the table (a split terminal) its cells were cut to "pho…" and "leads nee…": two lines a source
    split = Console(width=50)
    monkeypatch.setattr(common, "console", split)
    monkeypatch.setattr(enrich_commands, "console", split)
    shown = leads.ok(*args).splitlines()
    needing = plan["sources"]["phone"]["leadsNeeding"]
    assert shown[:2] == ["estimate:", f"phone: {needing:,} leads needing"]
    assert shown[2].startswith("  ~") and " credits (at most " in shown[2]
    assert not [line for line in shown if "…" in line]


def test_the_template_chooses_the_sources_unless_sources_is_given(leads: Leads, prospects: list[int]) -> None:
    """premium's sources: [email, phone, linkedin, company] are run when --sources is not given."""
    premium = leads.json("enrich", "--list", "prospects", "--template", "premium", "--estimate", "--json")
    assert set(premium["sources"]) == {"email", "phone", "linkedin", "company"}
    standard = leads.json("enrich", "--list", "prospects", "--estimate", "--json")
    assert set(standard["sources"]) == {"company"}
    chosen = leads.json(
        "enrich", "--list", "prospects", "--template", "premium", "--sources", "phone", "--estimate", "--json"
    )
    assert set(chosen["sources"]) == {"phone"}


def test_a_stage_no_lead_has_is_noted_as_by_search(leads: Leads, prospects: list[int]) -> None:
    """``leads enrich --stage MQL`` (stages are stored lower-case) said only that the selection holds no leads;
    it notes the stage no lead has first, as ``leads search`` does."""
    result = leads.run("enrich", "--list", "prospects", "--stage", "MQL", "--estimate")
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        "note: no lead of the selected lists has stage 'MQL', and it is none of new, mql, sql, customer,"
        " disqualified, nurture (a stage a CRM set is searched as stored) error: the selection (lists prospects;"
        " stage MQL) holds no leads; nothing to enrich"
    )
    assert "note" not in leads.run("enrich", "--list", "prospects", "--stage", "sql", "--estimate").stderr


def test_user_errors_are_one_line(leads: Leads, prospects: list[int], tmp_path: Path) -> None:
    assert "unknown source(s) fax" in leads.fails("enrich", "--list", "prospects", "--sources", "fax")
    assert "list 'nope': not found or not shared with you" in leads.fails("enrich", "--list", "nope")
    assert "say which leads to enrich" in leads.fails("enrich")
    bad_ids = tmp_path / "ids.txt"
    bad_ids.write_text("1\nabc\n")
    assert "line 2: expected a lead id" in leads.fails("enrich", "--ids", str(bad_ids))
    assert "no template named 'gold'" in leads.fails("enrich", "--list", "prospects", "--template", "gold")
    assert "unknown field 'colour'" in leads.fails("enrich", "--list", "prospects", "--where", "colour=red")
    assert "operator ~ does not apply to employee_count" in leads.fails(
        "enrich", "--list", "prospects", "--where", "employee_count ~ 5"
    )
    missing = tmp_path / "missing.txt"
    missing.write_text(f"{prospects[0]}\n999999\n")
    assert "1 lead id(s) do not exist, are deleted or are in lists you cannot read: 999999" in leads.fails(
        "enrich", "--ids", str(missing)
    )
    assert "holds no leads" in leads.fails("enrich", "--list", "prospects", "--where", "country = ZZ")
    for url in (
        *("hooks.example.com/x?token=s3cret", "ftp://hooks.example.com/x", "https:///x", "http://[::1/x"),
        "http://bob:s3cret@hooks.example.com:99999/x",
    ):
        refused = leads.fails("enrich", "--list", "prospects", "--notify", url)
        assert "--notify must be an http:// or https:// URL with a host name" in refused and "s3cret" not in refused
    refused = leads.fails("enrich-after-import", "prospects", "--notify", "hooks.example.com/x")
    assert "--notify must be an http:// or https:// URL" in refused
    # nan capped nothing; enrich-after-import took even a negative cap; the cap is repeated as typed (:g wrote
    # -0.00001 as -1e-05)
    for cap in ("nan", "inf", "-1", "-0.00001"):
        for args in (("enrich", "--list", "prospects", "--estimate"), ("enrich-after-import", "prospects")):
            refused = leads.fails(*args, "--max-credits", cap)
            assert refused.endswith(f"--max-credits must be a number of credits >= 0; got {cap}"), (args, cap)


def test_enrichment_after_import_queues_behind_the_runs_people_launch_unless_its_priority_is_given(
    leads: Leads, database_url: str, world_leads_csv: Path
) -> None:
    """The sensor starts these paid runs with nobody launching them, as the drop folder's imports and the
    schedules' runs, which queue at dagster/priority -10; a setting made without --priority queued them at 0, and
    the runs of 50 files imported at once went ahead of a run launched meanwhile from the UI."""
    with connect(database_url) as conn:
        create_list(conn, "auto", owner="tester")
        create_list(conn, "urgent", owner="tester")
    leads.ok("enrich-after-import", "auto", "--sources", "company")
    leads.ok("enrich-after-import", "urgent", "--sources", "company", "--priority", "high")
    import_file(database_url, world_leads_csv, "auto", batch_id="import-auto")
    import_file(database_url, world_leads_csv, "urgent", batch_id="import-urgent")
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        resources={"database": LeadsDatabase(database_url=database_url)},
        definitions=defs,
    )
    result = enrich_after_import_sensor(context)
    assert isinstance(result, dg.SensorResult)
    tags = {request.partition_key: request.tags for request in result.run_requests or []}
    assert tags["import-auto"].items() >= {**BACKGROUND_PRIORITY, "leads/priority": "low"}.items()
    assert (tags["import-urgent"]["dagster/priority"], tags["import-urgent"]["leads/priority"]) == ("10", "high")


def test_where_selects_exactly_what_search_selects(leads: Leads, prospects: list[int], database_url: str) -> None:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT country, count(*) AS n FROM leads GROUP BY country ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    filters = ["--where", f"country = {row['country']}", "--where", "title ~ e"]
    found = leads.json("search", "--list", "prospects", *filters, "--limit", "1000", "--json")["leads"]

    plan = leads.json("enrich", "--list", "prospects", *filters, "--sources", "email", "--estimate", "--json")
    launched = leads.json("enrich", "--list", "prospects", *filters, "--template", "basic", "--json")

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


def test_enriching_needs_the_editor_role(leads: Leads, prospects: list[int]) -> None:
    refused = leads.fails("enrich", "--list", "prospects", "--estimate", user="mallory")
    assert "list 'prospects': not found or not shared with you" in refused
    leads.ok("lists", "share", "prospects", "mallory", "--role", "viewer")
    refused = leads.fails("enrich", "--list", "prospects", "--estimate", user="mallory")
    assert "enriching its leads needs the role editor or owner" in refused
    refused = leads.fails("enrich-after-import", "prospects", "--template", "premium", user="mallory")
    assert "enriching its imports needs the role editor or owner" in refused
    leads.ok("lists", "share", "prospects", "mallory", "--role", "editor")
    assert leads.json("enrich", "--list", "prospects", "--estimate", "--json", user="mallory")["leads"] == 300


def test_a_job_is_shown_to_its_starter_and_the_readers_of_its_lists(
    leads: Leads, prospects: list[int], tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{prospects[0]}\n")
    job = leads.json("enrich", "--ids", str(ids), "--wait", "--json")["jobId"]
    refused = leads.fails("jobs", "show", job, user="mallory")  # named the job's list
    unknown = leads.fails("jobs", "show", f"{job}-x", user="mallory")
    assert f"enrichment job {job!r}: not found or not shared with you" in refused
    assert refused == unknown.replace(f"{job}-x", job)
    assert leads.json("jobs", "ls", "--json", user="mallory") == []
    leads.ok("lists", "share", "prospects", "mallory", "--role", "viewer")
    assert leads.json("jobs", "show", job, "--json", user="mallory")["jobId"] == job
    assert [j["jobId"] for j in leads.json("jobs", "ls", "--json", user="mallory")] == [job]


def test_running_a_job_needs_the_editor_role_on_its_lists(leads: Leads, prospects: list[int], tmp_path: Path) -> None:
    """The hidden `leads jobs run ID` (what `leads enrich` starts in the background) ran any job for anyone, who
    could spend its credits and write its list's leads; it now checks as `leads enrich` does."""
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{prospects[0]}\n")
    job = leads.json("enrich", "--ids", str(ids), "--wait", "--json")["jobId"]
    refused = leads.fails("jobs", "run", job, user="mallory")
    unknown = leads.fails("jobs", "run", f"{job}-x", user="mallory")
    assert refused == unknown.replace(f"{job}-x", job), "a stranger learns nothing"
    assert f"enrichment job {job!r}: not found or not shared with you" in refused
    leads.ok("lists", "share", "prospects", "mallory", "--role", "viewer")
    viewer = leads.fails("jobs", "run", job, user="mallory")
    assert f"running enrichment job {job} needs the role editor or owner" in viewer
    leads.ok("lists", "share", "prospects", "mallory", "--role", "editor")
    leads.ok("jobs", "run", job, user="mallory")


def test_credits_rows_are_shown_whole_at_80_columns(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns (a pipe, cron's mail) the table cut a job named after a long list to "enrich-q3-emea-…",
    which `leads jobs show` does not take. There each row takes two lines, every value whole."""
    job = "enrich-q3-emea-trade-fair-leads-2026-frankfurt-messe-hall-4-20261130T160000000000"
    with connect(database_url) as conn:
        fair = create_list(conn, "fair", owner="tester")
        conn.execute(
            "INSERT INTO credit_charges (charged_at, credits, source, field, job_id, list_id)"
            " VALUES (now(), 2.5, 'company/gemini', 'industry', %s, %s)",
            (job, fair.id),
        )
    monkeypatch.setattr(common, "console", Console(width=80))
    assert leads.ok("credits", "--by", "job").splitlines()[:2] == [job, "  2.5 credits, 1 charge"]
    monkeypatch.setattr(common, "console", Console(width=200))
    assert leads.ok("credits", "--by", "job").startswith("┏")  # the table


def test_a_million_credits_are_written_whole(leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``:g`` wrote 1,234,567.5 credits as "1.23457e+06" in the ledger's table and its month's line, rounded to six
    digits."""
    with connect(database_url) as conn:
        fair = create_list(conn, "fair", owner="tester")
        conn.execute(
            "INSERT INTO credit_charges (charged_at, credits, source, field, job_id, list_id)"
            " VALUES (now(), 1234567.5, 'company/gemini', 'industry', 'enrich-fair', %s)",
            (fair.id,),
        )
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "2000000")
    monkeypatch.setattr(common, "console", Console(width=200))
    shown = leads.ok("credits", "--by", "source")
    assert "│ company/gemini │ 1,234,567.5 │ 1       │" in shown
    assert "this month: 1,234,567.5 of 2,000,000 credits" in shown
    assert "e+06" not in shown


def test_the_summarys_breakdown_is_one_line_at_80_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 80 columns (cron's mail of `leads enrich --wait`) a job of a few thousand leads broke the breakdown
    line before its company count, so a check grepping 'company 12345' found nothing."""
    narrow = Console(width=80)
    monkeypatch.setattr(common, "console", narrow)
    monkeypatch.setattr(enrich_commands, "console", narrow)
    found = {"found": 12345, "verified": 12000, "mobile": 9000}
    enrich_commands._print_summary({
        "jobId": "enrich-fair-20261130T160000000000",
        "status": "completed",
        "progress": {"processed": 12345, "total": 12345, "percentage": 100.0},
        "creditsUsed": 12345,
        "results": {"enriched": 12345, "noDataFound": 0, "failed": 0},
        "sources": [],
        "breakdown": {source: found for source in ("email", "phone", "linkedin", "company")},
    })  # fmt: skip
    assert capsys.readouterr().out.splitlines()[-1] == (
        "email 12345 found / 12000 verified, phone 12345 found / 9000 mobile, linkedin 12345, company 12345"
    )


def test_templates_commands(leads: Leads, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = leads.json("templates", "ls", "--json")
    assert [t["name"] for t in listing] == ["basic", "premium", "standard"]
    monkeypatch.setattr(common, "console", Console(width=80))  # a pipe: each template's description was cut
    lines = leads.ok("templates", "ls").splitlines()
    assert [line.partition(":")[0] for line in lines[::2]] == ["basic", "premium", "standard"]
    assert lines[::2] == [f"{t['name']}: {t['description']}" for t in listing]
    assert all(line.startswith("  providers ") for line in lines[1::2])
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\ncompany:\n  fields:\n    industry: {sources: [apify_search]}\n")
    assert "apify_search cannot supply industry" in leads.fails("templates", "validate", str(bad))
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")  # a binary file given by mistake was a UnicodeDecodeError traceback
    assert f"{bad}: the template is not UTF-8 text (byte 1)" in leads.fails("templates", "validate", str(bad))
    [standard] = [t for t in listing if t["name"] == "standard"]
    good = tmp_path / "q3-emea-trade-fair-company-profiles-from-gemini.yaml"
    good.write_text(Path(standard["path"]).read_text().replace("name: standard", "name: q3-emea-trade-fair"))
    monkeypatch.setattr(enrich_commands, "console", Console(width=80))  # the path was broken over lines
    [line] = leads.ok("templates", "validate", str(good)).splitlines()
    assert line.startswith(f"{good}: OK (template q3-emea-trade-fair, sources ") and line.endswith(")")
    assert "; company providers " in line
    # a template of the phone and LinkedIn stages alone: "providers " and nothing after it
    contacts = tmp_path / "contacts.yaml"
    contacts.write_text("name: contacts\nsources: [phone, linkedin]\n")
    assert (
        leads.ok("templates", "validate", str(contacts)).strip()
        == f"{contacts}: OK (template contacts, sources phone, linkedin)"
    )


def test_a_shipped_template_shown_as_yaml_is_a_file_of_one_s_own(leads: Leads, tmp_path: Path) -> None:
    """`templates show premium > mine.yaml` wrote the resolved waterfall as JSON, which `templates validate`
    refused ("unknown key(s) maxCreditsPerLead, path"): --yaml prints the template's file, comments and all."""
    mine = tmp_path / "mine.yaml"
    mine.write_text(leads.ok("templates", "show", "premium", "--yaml").replace("name: premium", "name: mine"))
    assert "# Gemini research" in mine.read_text()
    assert leads.ok("templates", "validate", str(mine)).startswith(f"{mine}: OK (template mine, sources email, ")
    assert leads.json("templates", "show", str(mine)) == {
        **leads.json("templates", "show", "premium"),
        "name": "mine",
        "path": str(mine),
    }


def test_the_monthly_budget_stops_spending_with_a_clear_message(
    leads: Leads, prospects: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "2")

    document = leads.json("enrich", "--list", "prospects", "--wait", "--json")

    assert document["creditsUsed"] == 2 and document["status"] == "partial"
    # what the month had spent when the stage began, not after: "(0 spent)" beside "used up" read as 2 unspent
    assert "monthly budget of 2 credits is used up (0 spent before this stage)" in document["sources"][0]["note"]
    message = leads.fails("enrich", "--list", "prospects")
    assert "monthly budget of 2 credits is used up (2 spent); raise LEADS_MONTHLY_CREDITS" in message
    free = leads.json("enrich", "--list", "prospects", "--template", "basic", "--wait", "--json")
    assert free["status"] == "completed" and free["creditsUsed"] == 0


def test_the_estimate_says_what_the_monthly_budget_leaves_and_whether_the_launch_is_refused(
    leads: Leads, prospects: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the month's budget used up, `leads enrich --estimate` printed a normal estimate, and the launch it
    estimated was then refused: the estimate says what is left, and what the launch's own check would say. What
    fits is whole calls: 0.5 credit left read "~0.5 ... fit", yet buys no 1-credit Gemini research (the run spent
    0). An amount of 1 read "1 credits"."""
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "2")
    leads.json("enrich", "--list", "prospects", "--wait", "--json")  # spends the 2 credits
    args = ("enrich", "--list", "prospects", "--sources", "company", "--overwrite")
    for budget, left, refused in (("1", 0, True), ("2.5", 0.5, False)):
        monkeypatch.setenv("LEADS_MONTHLY_CREDITS", budget)
        plan = leads.json(*args, "--estimate", "--json")
        month = plan.pop("monthlyBudget")
        assert plan["estimatedCredits"] > left and set(plan["sources"]["company"]["paidCalls"]) == {"gemini"}
        assert {k: month[k] for k in ("budget", "usedThisMonth", "left", "launchRefused", "creditsThatFit")} == {
            "budget": float(budget),
            "usedThisMonth": 2,
            "left": left,
            "launchRefused": refused,
            "creditsThatFit": 0,
        }
        text = " ".join(leads.ok(*args, "--estimate").split())
        amount = "1 credit" if budget == "1" else f"{budget} credits"
        assert f"monthly budget of {amount}: 2 used this month, {left:g} left; " in text
        if refused:
            assert "a launch would be refused: raise LEADS_MONTHLY_CREDITS" in text
            assert "monthly budget of 1 credit is used up (2 spent)" in leads.fails(*args)
        else:
            assert f"~0 of the job's ~{plan['estimatedCredits']:g} credits fit" in text
            ran = leads.json(*args, "--wait", "--json")  # not refused: it runs until the budget is used up
            assert ran["status"] == "partial" and "budget of 2.5 credits is used up" in ran["sources"][0]["note"]
            assert ran["creditsUsed"] == 0  # as the estimate said: no whole call fit
    free = leads.json(*args, "--template", "basic", "--estimate", "--json")
    assert free["monthlyBudget"]["launchRefused"] is False  # a free job runs
    monkeypatch.delenv("LEADS_MONTHLY_CREDITS")
    assert "monthlyBudget" not in leads.json(*args, "--estimate", "--json")


def test_without_wait_the_job_runs_in_the_background(leads: Leads, prospects: list[int], database_url: str) -> None:
    launched = leads.json("enrich", "--list", "prospects", "--template", "basic", "--priority", "high", "--json")

    assert launched["status"] == "queued" and launched["leadsQueued"] == 300 and launched["estimatedCredits"] == 0
    deadline = time.monotonic() + 120
    document = leads.json("jobs", "show", launched["jobId"], "--json")
    while document["status"] in ("queued", "processing") and time.monotonic() < deadline:
        time.sleep(1)
        document = leads.json("jobs", "show", launched["jobId"], "--json")
    assert document["status"] == "completed", document
    assert document["progress"]["processed"] == 300


def test_jobs_show_wait_waits_for_the_end_of_a_job_with_json_too_and_prints_no_bar_off_a_terminal(
    leads: Leads, prospects: list[int]
) -> None:
    """A script following a job it started in the background (``leads jobs show JOB --wait --json``) got the job
    as it was, "queued": --wait was dropped with --json. Without --json, written to a pipe or a file, the progress
    bar came out once at the end, a line of box-drawing characters before the summary."""
    launched = leads.json("enrich", "--list", "prospects", "--template", "basic", "--json")
    document = leads.json("jobs", "show", launched["jobId"], "--wait", "--json")
    assert document["status"] == "completed" and document["progress"]["processed"] == 300
    # the command to follow it is one line (it was broken at 80 columns, between `leads jobs show` and the id)
    queued = leads.ok("enrich", "--list", "prospects", "--template", "basic").splitlines()[-1]
    again = queued.removeprefix("job ").split()[0]
    assert queued.endswith(f"Follow it with `leads jobs show {again}`.") and len(queued) > 80
    shown = leads.ok("jobs", "show", again, "--wait")
    assert shown.startswith(f"job {again}: completed, 300/300") and "enriching" not in shown, shown
    assert shown.splitlines()[0].endswith("credits used"), "one line for a log (it was broken at 80 columns)"


def test_leads_verified_on_one_address_are_each_charged_their_own_verdict(
    leads: Leads,
    sandbox: Sandbox,
    sandbox_world: World,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same people without an email in two lists, one job over both: each pair of leads guesses the same
    addresses, side by side. A paid verdict was charged to whichever lead last named the address, so its twin got
    no verdict and the other lead's cap paid for both; each lead is now charged its own call (or reuses the
    verdict its twin bought, for free)."""
    assert sandbox.http_app is not None
    monkeypatch.setenv("LEADS_SMTP_PROBING", "off")  # ZeroBounce answers every check
    strict = {c.domain: c.name for c in sandbox_world.companies if c.mx_behaviour == "strict"}
    people = [p for p in sandbox_world.people if p.company_domain in strict][:8]
    rows = ["First Name,Last Name,Company,Website"]
    rows += [f"{p.first_name},{p.last_name},{strict[p.company_domain]},{p.company_domain}" for p in people]
    csv_path = tmp_path / "people.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    for name in ("east", "west"):
        with connect(database_url) as conn:
            create_list(conn, name, owner="tester")
        import_file(database_url, csv_path, name)
    with connect(database_url) as conn:
        ids = [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id")]
    assert len(ids) == 2 * len(people) == 16
    (tmp_path / "ids.txt").write_text("\n".join(map(str, ids)) + "\n")
    template = tmp_path / "one.yaml"
    template.write_text("name: one\nsources: [email]\nmax_credits_per_lead: 1\n")
    asked = len(sandbox.http_app.log.records("zerobounce"))

    document = leads.json("enrich", "--ids", str(tmp_path / "ids.txt"), "--template", str(template), "--wait", "--json")

    with connect(database_url) as conn:
        verdicts = list(
            conn.execute(
                "SELECT lead_id, cost, details FROM lead_facts"
                " WHERE batch_id = %s AND field = 'email_status' AND source = 'zerobounce'",
                (document["jobId"],),
            )
        )
    assert {v["lead_id"] for v in verdicts} == set(ids), "every lead has the verdict on its first guess"
    per_lead: dict[int, float] = {}
    for v in verdicts:
        per_lead[v["lead_id"]] = per_lead.get(v["lead_id"], 0.0) + float(v["cost"])
    assert max(per_lead.values()) <= 1.0
    bought = [v for v in verdicts if "price_item" in v["details"]]
    assert len(bought) == len(sandbox.http_app.log.records("zerobounce")) - asked
    assert document["creditsUsed"] == sum(per_lead.values()) > 0


def test_with_smtp_probing_off_the_estimate_counts_the_verdicts_a_run_buys(
    leads: Leads,
    prospects: list[int],
    sandbox_world: World,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With SMTP probing off ZeroBounce answers every check, but the estimate counted only leads without an
    address: it said 0 credits for a run that bought a verdict on every address never verified, and for one that
    re-verified every address whose verdict had grown older than the email stage's cache_days. It now counts
    both (``unverifiedAddresses``, ``staleVerdicts``); while mail hosts are probed (free), no unverified one."""
    strict = {c.domain for c in sandbox_world.companies if c.mx_behaviour == "strict"}
    with connect(database_url) as conn:
        rows = list(conn.execute("SELECT id, email FROM leads WHERE email IS NOT NULL ORDER BY id"))
    ids = [r["id"] for r in rows if r["email"].rpartition("@")[2] in strict]
    assert len(ids) >= 10
    (tmp_path / "ids.txt").write_text("\n".join(map(str, ids)) + "\n")
    enrich = ["enrich", "--ids", str(tmp_path / "ids.txt"), "--sources", "email", "--json"]
    assert leads.json(*enrich, "--estimate")["estimatedCredits"] == 0  # probed: no verifier is paid
    monkeypatch.setenv("LEADS_SMTP_PROBING", "off")  # ZeroBounce answers every check

    unverified = leads.json(*enrich, "--estimate")
    first = leads.json(*enrich, "--wait")

    assert unverified["estimatedCredits"] == first["creditsUsed"] == len(ids)
    assert unverified["sources"]["email"]["unverifiedAddresses"] == len(ids)
    assert leads.json(*enrich, "--estimate")["estimatedCredits"] == 0  # fresh verdicts are kept
    with connect(database_url) as conn:
        conn.execute("UPDATE lead_facts SET observed_at = observed_at - interval '35 days'")
        conn.execute("UPDATE email_verifications SET checked_at = checked_at - interval '35 days'")

    plan = leads.json(*enrich, "--estimate")
    again = leads.json(*enrich, "--wait")

    assert plan["estimatedCredits"] == plan["sources"]["email"]["estimatedCredits"] == again["creditsUsed"] == len(ids)
    assert plan["sources"]["email"]["staleVerdicts"] == len(ids)
    assert plan["sources"]["email"]["unverifiedAddresses"] == 0


def test_an_estimate_does_not_load_the_dagster_definitions(leads: Leads, prospects: list[int]) -> None:
    """An estimate launches nothing, but it loaded every asset and resource to check that the sources' assets
    are deployed: 342 MB and ~10 s for the estimate of the demo file, 235 MB and ~5 s without."""
    script = (
        "import sys; from leads_pipeline.cli import app; "
        "app(['enrich', '--list', 'prospects', '--estimate', '--json'], standalone_mode=False); "
        "print('definitions' if 'leads_pipeline.definitions' in sys.modules else 'none')"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    *plan, loaded = done.stdout.strip().splitlines()
    assert json.loads("\n".join(plan))["leads"] == len(prospects)
    assert loaded == "none"


def test_an_empty_selection_is_refused_before_the_dagster_definitions_are_loaded(
    leads: Leads, prospects: list[int]
) -> None:
    """`leads enrich --where "country = XX"` took ~6 s (2.9 s of CPU, 258 MB) to say the selection holds no leads:
    it loaded every asset and resource first, to check that the sources' assets are deployed."""
    script = (
        "import sys; from leads_pipeline.cli import app; "
        "code = app(['enrich', '--list', 'prospects', '--where', 'country = ZZ', '--sources', 'company'], "
        "standalone_mode=False); "
        "print(code, 'definitions' if 'leads_pipeline.definitions' in sys.modules else 'none')"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert "holds no leads" in done.stderr
    assert done.stdout.splitlines()[-1] == "1 none"


def test_jobs_ls_shows_each_job_whole_at_80_columns(
    leads: Leads, prospects: list[int], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job id is what `leads jobs show` needs, but in an 80-column terminal the table cut it to
    "enrich-prospe…"; kept whole, it left the sources, template and created columns two letters wide ("co…",
    "ba…", "20…"). There each job takes two lines now, every value whole; a wide terminal keeps the table."""
    job = leads.json("enrich", "--list", "prospects", "--template", "basic", "--wait", "--json")["jobId"]
    [listed] = leads.json("jobs", "ls", "--json")
    with connect(database_url) as conn:
        created = store.get_job(conn, job).created_at
    values = [job, "completed", f"{listed['leadsQueued']:,}", ",".join(listed["sources"]), "basic"]
    assert listed["createdAt"] == created.isoformat() == leads.json("jobs", "show", job, "--json")["createdAt"]

    monkeypatch.setattr(common, "console", Console(width=80))  # as a terminal (or pipe) of 80
    lines = leads.ok("jobs", "ls").splitlines()
    assert len(job) > 30 and max(len(line) for line in lines) <= 80
    assert lines == [
        job,
        f"  completed, {values[2]} leads, {values[3]}, template basic, created {created:%Y-%m-%d %H:%M}",
    ]

    monkeypatch.setattr(common, "console", Console(width=160))
    [row] = [line for line in leads.ok("jobs", "ls").splitlines() if job in line]
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == [*values, f"{created:%Y-%m-%d %H:%M}"]


def test_the_linkedin_estimate_counts_the_profiles_of_leads_with_a_url(
    leads: Leads, prospects: list[int], database_url: str, tmp_path: Path
) -> None:
    """The LinkedIn stage reads the profile of a lead that has a URL (1 credit each), but the estimate counted
    only leads without a URL: 0 credits for leads that all had one. It now counts the profiles it will read."""
    with connect(database_url) as conn:
        ids = [
            r["id"] for r in conn.execute("SELECT id FROM leads WHERE linkedin_url IS NOT NULL ORDER BY id LIMIT 20")
        ]
    assert len(ids) == 20
    (tmp_path / "ids.txt").write_text("\n".join(map(str, ids)) + "\n")
    enrich = ["enrich", "--ids", str(tmp_path / "ids.txt"), "--sources", "linkedin", "--json"]

    plan = leads.json(*enrich, "--estimate")
    document = leads.json(*enrich, "--wait")

    assert plan["estimatedCredits"] >= document["creditsUsed"] >= 0.8 * len(ids)  # a private profile costs nothing
    assert plan["sources"]["linkedin"]["profileReads"] == len(ids)
    assert leads.json(*enrich, "--estimate")["estimatedCredits"] == 0  # read now: kept while fresh


def test_a_shared_answer_is_charged_once_to_a_lead_with_room(
    leads: Leads, prospects: list[int], sandbox: Sandbox, database_url: str, tmp_path: Path
) -> None:
    """A company lookup serves all the company's leads and is charged in full to one of them, the one furthest
    from its cap: no lead passes the cap of 2 over the job's stages, every paid lookup is on exactly one fact (not
    on each of the company's leads), and the job's credits are what the provider was asked for."""
    assert sandbox.http_app is not None
    template = tmp_path / "shared.yaml"
    template.write_text(
        "name: shared\nsources: [phone, company]\nmax_credits_per_lead: 2\n"
        "company:\n  default: {sources: [domain, gemini], stop: first_validated}\n"
    )
    asked = len(sandbox.http_app.log.records("gemini"))

    document = leads.json("enrich", "--list", "prospects", "--template", str(template), "--wait", "--json")

    job = document["jobId"]
    with connect(database_url) as conn:
        per_lead = {
            r["lead_id"]: float(r["c"])
            for r in conn.execute(
                "SELECT lead_id, sum(cost) AS c FROM lead_facts WHERE batch_id = %s GROUP BY lead_id", (job,)
            )
        }
        paid = list(
            conn.execute(
                "SELECT lead_id, cost FROM lead_facts WHERE batch_id = %s AND source = 'company/gemini' AND cost > 0",
                (job,),
            )
        )
        bought = list(conn.execute("SELECT credits FROM company_profiles WHERE job_id = %s", (job,)))
    assert max(per_lead.values()) <= 2.0
    assert len(sandbox.http_app.log.records("gemini")) - asked == len(bought) > 0  # one call per company
    assert sorted(float(f["cost"]) for f in paid) == sorted(float(b["credits"]) for b in bought if b["credits"])
    assert document["creditsUsed"] == round(sum(per_lead.values()), 4)


def test_a_killed_job_reads_as_interrupted_and_resumes(
    leads: Leads, prospects: list[int], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `leads enrich` killed mid-run (SIGKILL, Ctrl-C on --wait) stayed "processing" in `leads jobs ls/show`
    for good, and only the hidden `leads jobs run` went on with it. The process running a job now holds its
    advisory lock: a job of one still processing without it reads as "interrupted", and `leads jobs resume`
    goes on with it; a job still running is not run a second time."""
    spawned: list[str] = []
    monkeypatch.setattr(enrich_commands, "_spawn", lambda env, job_id, keeper: spawned.append(job_id))
    job = leads.json("enrich", "--list", "prospects", "--sources", "company", "--json")["jobId"]
    assert spawned == [job]

    def kill_while_processing(check: bool) -> dg.DagsterRun:
        """SIGKILL a `leads jobs run` of the job once its Dagster run started; that run."""
        command = [sys.executable, "-c", "from leads_pipeline.cli import app; app()", "jobs", "run", job]
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = dg.RunsFilter(tags={"leads/job": job}, statuses=[dg.DagsterRunStatus.STARTED])
        try:
            deadline = time.monotonic() + 120
            with connect(database_url) as conn:
                while not (runs := dg.DagsterInstance.get().get_runs(started)) and time.monotonic() < deadline:
                    time.sleep(0.05)
                while (status := store.get_job(conn, job).status) != "processing" and time.monotonic() < deadline:
                    time.sleep(0.05)
            assert status == "processing", "a job its process still runs reads as processing"
            if check:
                assert "is still running" in leads.fails("jobs", "resume", job)
                assert "is still running in another process" in leads.fails("jobs", "run", job)
        finally:
            worker.kill()
            worker.wait()
        [killed] = runs
        assert dagster_status(killed) == dg.DagsterRunStatus.STARTED, "the killed process never wrote its run's end"
        return killed

    def dagster_status(run: dg.DagsterRun) -> dg.DagsterRunStatus | None:
        reread = dg.DagsterInstance.get().get_run_by_id(run.run_id)
        return None if reread is None else reread.status

    killed = kill_while_processing(check=True)
    assert leads.json("jobs", "show", job, "--json")["status"] == "interrupted"
    assert dagster_status(killed) == dg.DagsterRunStatus.CANCELED, "the reader ended the run Dagster showed running"
    killed = kill_while_processing(check=False)
    assert [j["status"] for j in leads.json("jobs", "ls", "--json") if j["jobId"] == job] == ["interrupted"]
    leads.ok("jobs", "resume", job, "--wait")
    assert dagster_status(killed) == dg.DagsterRunStatus.CANCELED, "resuming ended the run Dagster showed running"
    assert leads.json("jobs", "show", job, "--json")["status"] == "completed"
    assert "ended completed: only an interrupted job is resumed" in leads.fails("jobs", "resume", job)
    with connect(database_url) as conn:  # a run Dagster launched holds no lock: its run status tells
        conn.execute("UPDATE enrichment_jobs SET status = 'processing', run_in_process = false WHERE id = %s", (job,))
    assert leads.json("jobs", "show", job, "--json")["status"] == "processing"


def test_an_interrupted_jobs_run_stops_its_stages_and_leaves_the_job_resumable(
    leads: Leads, prospects: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT or SIGTERM to `leads jobs run` (its stages run in its process) was retried by the stage's
    RetryPolicy, which Dagster applies to interrupts too, and the job went on to the end. The interrupted stage now
    ends without a retry, the job's next stage does not start, the run ends canceled and the job reads
    interrupted: `leads jobs resume` goes on with it."""
    monkeypatch.setattr(enrich_commands, "_spawn", lambda env, job_id, keeper: None)
    job = leads.json("enrich", "--list", "prospects", "--sources", "company,phone", "--json")["jobId"]
    ran: list[str] = []

    def interrupted(self: object) -> None:
        ran.append(type(self).__name__)
        raise dg.DagsterExecutionInterruptedError  # what SIGINT raises in a step

    stages = {CompanyEnricher: CompanyEnricher.run, PhoneStage: PhoneStage.run}
    for stage in stages:
        monkeypatch.setattr(stage, "run", interrupted)
    result = leads.run("jobs", "run", job)  # its Dagster log at ERROR goes to the job's log file
    assert result.exit_code == 1
    assert f"error: enrichment job {job} was interrupted: `leads jobs resume {job}`" in result.stderr
    assert len(ran) == 1, "the stage was retried, or the next one started"
    [run] = dg.DagsterInstance.get().get_runs(dg.RunsFilter(tags={"leads/job": job}))
    assert run.status == dg.DagsterRunStatus.CANCELED
    assert leads.json("jobs", "show", job, "--json")["status"] == "interrupted"
    for stage, run_stage in stages.items():
        monkeypatch.setattr(stage, "run", run_stage)
    leads.ok("jobs", "resume", job, "--wait")
    assert leads.json("jobs", "show", job, "--json")["status"] in ("completed", "partial")


def test_a_job_whose_process_died_as_it_started_is_interrupted_at_once_and_a_resumed_one_is_never(
    leads: Leads, prospects: list[int], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The detached `leads jobs run` killed (kill -9) before it took the job's lock left the job "queued" for a
    minute's grace, and `leads jobs resume` refused it meanwhile as "not started yet"; a plain `leads jobs resume`
    left the job reading "interrupted" until its new process took the lock (seconds). `leads enrich` and `leads jobs
    resume` now hold the lock from before the job is created or resumed and hand it to the process they start once
    it waits for it: the job reads interrupted as soon as that process died, and never while it starts. A queued job
    Dagster is to run stays queued."""
    popen = subprocess.Popen

    def killed_at_once(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = popen(*args, **kwargs)
        process.kill()
        process.wait()
        return process

    with monkeypatch.context() as patch:
        patch.setattr(enrich_commands.subprocess, "Popen", killed_at_once)
        job = leads.json("enrich", "--list", "prospects", "--sources", "company", "--json")["jobId"]
    assert leads.json("jobs", "show", job, "--json")["status"] == "interrupted"
    leads.ok("jobs", "resume", job)
    assert leads.json("jobs", "show", job, "--json")["status"] in ("queued", "processing", "completed")
    deadline = time.monotonic() + 180
    while (status := leads.json("jobs", "show", job, "--json")["status"]) != "completed":
        assert status in ("queued", "processing") and time.monotonic() < deadline, status
        time.sleep(0.2)
    with connect(database_url) as conn:  # a job Dagster is to run, waiting in its run queue
        conn.execute("UPDATE enrichment_jobs SET status = 'queued', run_in_process = false WHERE id = %s", (job,))
    assert leads.json("jobs", "show", job, "--json")["status"] == "queued"


def test_a_job_whose_dagster_run_is_queued_runs_once_though_it_reads_interrupted(
    leads: Leads, prospects: list[int], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job of a version before sql/067 whose Dagster run still waited in the run queue at the upgrade reads
    interrupted (sql/116): `leads jobs resume` ran it while that run, once the queue started it, ran it again. The
    resume is refused while a run Dagster launched for the job is queued; a run Dagster launched that starts while
    a `leads` process runs the job stands down (canceled, the job untouched); a resume that takes the lock after
    such a run took the job over is refused."""
    monkeypatch.setattr(enrich_commands, "_spawn", lambda env, job_id, keeper: None)
    job = leads.json("enrich", "--list", "prospects", "--sources", "company", "--json")["jobId"]
    assert leads.json("jobs", "show", job, "--json")["status"] == "interrupted"  # as sql/116 leaves such a job
    instance = dg.DagsterInstance.get()
    tags = {"leads/job": job, "leads/source": "enrich_after_import"}
    location = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("leads_pipeline"), "__repository__")
    queued = dg.DagsterRun(
        job_name="enrichment",
        tags=tags,
        status=dg.DagsterRunStatus.QUEUED,
        remote_job_origin=location.get_job_origin("enrichment"),  # (a queued run says what the daemon launches)
    )
    instance.add_run(queued)
    refusal = leads.fails("jobs", "resume", job)
    assert f"waits in Dagster's run queue (run {queued.run_id})" in refusal
    instance.report_run_canceled(queued)  # terminated from the UI

    resources = {
        "database": LeadsDatabase(database_url=database_url),
        "gemini": GeminiResource(api_key="unused"),
        "apify": ApifyResource(token="unused"),
    }
    with connect(database_url, autocommit=True) as keeper:
        store.claim_job(keeper, job)  # `leads jobs resume` runs it
        started = materialize_batch([company_profiles], job, instance, resources, tags=tags, raise_on_error=False)
        assert started.dagster_run.status == dg.DagsterRunStatus.CANCELED, "canceled: the job is not settled failed"
        with connect(database_url) as conn:
            assert [row["status"] for row in store.progress_rows(conn, job)] == ["queued"], "its source did not start"
    assert leads.json("jobs", "show", job, "--json")["status"] == "interrupted"

    runnable = enrich_commands._runnable_job

    def taken_over_meanwhile(env: Any, job_id: str) -> Any:
        """A run Dagster launched takes the job over between the resume reading it interrupted and its lock."""
        found = runnable(env, job_id)
        with connect(database_url) as conn:
            assert store.run_by_dagster(conn, job_id)
        return found

    monkeypatch.setattr(enrich_commands, "_runnable_job", taken_over_meanwhile)
    assert "is run by a Dagster run that started meanwhile" in leads.fails("jobs", "resume", job)


def test_credits_show_only_what_the_lists_one_can_read_spent(
    leads: Leads, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads credits --by job` showed anyone every job, named after a list they were not told exists, and its
    spending. This month's total stays everyone's: it is what LEADS_MONTHLY_CREDITS caps, and says how much of it
    no row shows."""
    with connect(database_url) as conn:
        for name, owner in (("mine", "tester"), ("theirs", "ana")):
            list_id = create_list(conn, name, owner=owner).id
            conn.execute(
                "INSERT INTO batches (id, kind, list_id) VALUES (%s, 'selection', %s)", (f"enrich-{name}", list_id)
            )
            conn.execute(
                "WITH l AS (INSERT INTO leads (list_id) VALUES (%s) RETURNING id)"
                " INSERT INTO lead_facts (lead_id, field, value, source, confidence, cost, batch_id)"
                " SELECT id, 'industry', 'Software', 'company/gemini', 50, 2, %s FROM l",
                (list_id, f"enrich-{name}"),
            )
    credits = leads.json("credits", "--by", "job", "--json")
    assert credits["rows"] == [{"job": "enrich-mine", "credits": 2, "charges": 1}]
    assert (credits["thisMonth"], credits["thisMonthInNoRow"]) == (4, 2)
    monkeypatch.setattr(enrich_commands, "console", Console(width=80))  # a pipe: the line was broken before "(in"
    assert leads.ok("credits").splitlines()[-1] == (
        "this month: 4 credits, 2 of them on lists deleted since or that you cannot read (in no row)"
    )
    assert "enrich-theirs" not in leads.ok("credits", "--by", "job", user="bob")
    by_source = leads.json("credits", "--json")  # each grouping reads the ledger's own columns, not the leads'
    assert by_source["rows"] == [{"source": "company/gemini", "credits": 2, "charges": 1}]
    assert [row["credits"] for row in leads.json("credits", "--by", "month", "--json")["rows"]] == [2]


def test_spending_stays_spent_when_the_list_it_was_spent_on_is_purged(
    leads: Leads, prospects: list[int], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads credits` and the monthly budget summed the facts' costs, and facts go with their leads: purging the
    list a job had spent the month's 6 credits on showed "this month: 0 of 6 credits", and the next paid launch
    went. The charges outlive the leads: the month still counts them (the budget is everyone's) and refuses the
    launch; the purged list's charges are listed to nobody, as its leads are, and name no lead or fact. The month's
    line said nothing of them: an empty table over "this month: 6 of 6 credits"; it says they are in no row."""
    monkeypatch.setenv("LEADS_MONTHLY_CREDITS", "6")
    with connect(database_url) as conn:
        list_id = create_list(conn, "Spend", owner="tester").id
        conn.execute("INSERT INTO batches (id, kind, list_id) VALUES ('enrich-spend', 'selection', %s)", (list_id,))
        conn.execute(
            "WITH l AS (INSERT INTO leads (list_id) SELECT %s FROM generate_series(1, 3) RETURNING id)"
            " INSERT INTO lead_facts (lead_id, field, value, source, confidence, cost, batch_id)"
            " SELECT id, 'industry', 'Software', 'company/gemini', 50, 2, 'enrich-spend' FROM l",
            (list_id,),
        )
    month = datetime.now(UTC).strftime("%Y-%m")
    spent = leads.json("credits", "--by", "month", "--json")
    assert (spent["rows"], spent["thisMonth"]) == ([{"month": month, "credits": 6, "charges": 3}], 6)
    leads.ok("lists", "delete", "Spend", "--purge", "--yes")
    after = leads.json("credits", "--by", "month", "--json")
    assert (after["rows"], after["thisMonth"], after["thisMonthInNoRow"]) == ([], 6, 6)
    assert "this month: 6 of 6 credits, 6 of them on lists deleted since" in leads.ok("credits")
    refusal = leads.fails("enrich", "--list", "prospects", "--sources", "company")
    assert "monthly budget of 6 credits is used up (6 spent)" in refusal
    with connect(database_url) as conn:
        assert store.credits_used(conn, "enrich-spend") == 6
        charges = conn.execute("SELECT list_id, lead_id, fact_id FROM credit_charges").fetchall()
    assert charges == 3 * [{"list_id": list_id, "lead_id": None, "fact_id": None}]


def test_the_estimate_of_a_job_run_again_leaves_out_the_searches_it_reuses(leads: Leads, prospects: list[int]) -> None:
    """A people search or LinkedIn URL search answered (a match or none) is reused while fresh, so the same job
    run again buys none of them; its estimate still counted every lead missing a phone or URL (~320 credits for a
    run of 300 leads that spent 12)."""
    enrich = ["enrich", "--list", "prospects", "--sources", "phone,linkedin", "--json"]
    before = leads.json(*enrich, "--estimate")
    leads.json(*enrich, "--wait")

    again = leads.json(*enrich, "--estimate")
    rerun = leads.json(*enrich, "--wait")

    assert before["sources"]["phone"]["estimatedCredits"] > 0 and before["sources"]["linkedin"]["estimatedCredits"] > 0
    assert again["sources"]["phone"]["paidCalls"] == {"apifyPeopleSearch": 0}
    assert again["sources"]["linkedin"]["paidCalls"] == {"apifyGoogleSearch": 0, "apifyLinkedinProfile": 0}
    assert again["estimatedCredits"] == 0 == rerun["creditsUsed"]


def test_a_job_that_failed_under_wait_says_why_in_one_line_and_exits_1(
    leads: Leads, prospects: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leads enrich --wait` (and `leads demo`) printed Dagster's log of the failed stage, some forty lines of
    stack trace; the job's summary said only 'Execution of step "company_profiles" failed.', and the command
    exited 0, so `leads enrich --wait && next-step` went on. (The template's file deleted after the launch fails
    the stage at once; an unexpected error is retried.)"""

    def deleted(name: str) -> None:
        raise ConfigurationError(f"template {name!r}: no such file")

    monkeypatch.setattr(enrichment_assets, "load_template", deleted)
    line = leads.fails("enrich", "--list", "prospects", "--sources", "company", "--wait")
    job = line.split()[3]
    assert line == f"error: enrichment job {job} failed: template 'standard': no such file (`leads jobs show {job}`)"
    document = leads.json("jobs", "show", job, "--json")
    assert (document["status"], document["failure"]) == ("failed", "template 'standard': no such file")
    result = leads.run("enrich", "--list", "prospects", "--sources", "company", "--wait", "--json")
    assert (result.exit_code, result.stdout) == (1, ""), "with --json, nothing on stdout"
