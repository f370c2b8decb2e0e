"""``company_profiles`` over the wire: Gemini and Apify emulators, real PostgreSQL, checked against the world."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
from pytest import MonkeyPatch

from leads_pipeline.lib.credits import PRICES
from leads_pipeline.lib.enrichment.companies import Identity, ProviderAnswer, normalize_company_name
from leads_pipeline.lib.enrichment.engine import CompanyEnricher
from leads_pipeline.lib.enrichment.taxonomy import classify_industry, size_range
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.store import enrichment as store
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.store.search import create_selection_batch
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import World
from leads_pipeline_tests.defs.enrichment.conftest import leads_by_email, materialize_companies, sandbox_resources
from leads_pipeline_tests.support import import_file, instance_of_a_run_at_once, step_failure


def _gemini_calls(sandbox: Sandbox) -> int:
    assert sandbox.http_app is not None
    return len(sandbox.http_app.log.records("gemini"))


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node("company_profiles")
    return {key: value.value for key, value in materialization.metadata.items()}


def _facts(database_url: str, batch_id: str) -> list[dict[str, Any]]:
    with connect(database_url) as conn:
        return list(conn.execute("SELECT * FROM lead_facts WHERE batch_id = %s ORDER BY id", (batch_id,)))


def test_company_profiles_match_the_world_with_one_lookup_per_company(
    database_url: str, imported_batch: str, sandbox: Sandbox, sandbox_world: World, instance: dg.DagsterInstance
) -> None:
    assert sandbox.http_app is not None
    sandbox.http_app.reset()
    resources = sandbox_resources(database_url, sandbox)

    result = materialize_companies(resources, instance, imported_batch)

    assert result.success
    companies = {c.domain: c for c in sandbox_world.companies}
    people = {p.email: p for p in sandbox_world.people if p.email}
    checked = 0
    for email, lead in leads_by_email(database_url).items():
        truth = companies[people[email].company_domain]
        assert lead["company_domain"] == truth.domain
        assert lead["website"] == truth.domain
        if truth.employee_count is not None:
            assert lead["employee_count"] == truth.employee_count
        if truth.industry and classify_industry(truth.industry):
            assert lead["industry"] == classify_industry(truth.industry)
        checked += 1
    assert checked >= 200
    gemini_calls = _gemini_calls(sandbox)
    with connect(database_url) as conn:
        lookups = conn.execute("SELECT count(*) AS n FROM company_profiles WHERE provider = 'gemini'").fetchone()
    assert lookups is not None and gemini_calls == lookups["n"] <= len(companies) + 5
    facts = _facts(database_url, imported_batch)
    paid = [f for f in facts if f["cost"] > 0]
    assert len(paid) == gemini_calls  # the cost is on one fact per lookup; the company's other leads pay nothing
    assert all(f["source"] == "company/gemini" and float(f["cost"]) == PRICES["gemini"] for f in paid)
    assert all(f["details"]["price_item"] == "gemini" and f["details"]["provider_cost_unit"] == "tokens" for f in paid)
    assert all(f["details"]["provider_cost"] > 0 for f in paid)
    grounded = next(f for f in facts if f["source"] == "company/gemini" and f["field"] == "industry")
    assert grounded["details"]["sources"] and grounded["details"]["sources"][0]["uri"].startswith("https://")
    assert grounded["details"]["raw"]
    sizes = {(f["lead_id"], f["value"]) for f in facts if f["field"] == "company_size"}
    assert all(v == size_range(int(v.split("-")[0].rstrip("+")) or 1) for _, v in sizes)
    metadata = _metadata(result)
    assert metadata["companies"] >= len({p.company_domain for p in sandbox_world.people}) - 5
    assert metadata["credits_used_by_job"] == float(gemini_calls)
    assert all(check.passed for check in result.get_asset_check_evaluations())


def test_rerun_and_other_jobs_reuse_the_cache_and_pay_nothing_twice(
    database_url: str, imported_batch: str, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    assert sandbox.http_app is not None
    resources = sandbox_resources(database_url, sandbox)
    materialize_companies(resources, instance, imported_batch)
    with connect(database_url) as conn:
        first = store.credits_used(conn, imported_batch)
        facts_before = len(_facts(database_url, imported_batch))
    sandbox.http_app.reset()

    materialize_companies(resources, instance, imported_batch)  # a rerun (or a resumed, killed run)

    assert _gemini_calls(sandbox) == 0
    with connect(database_url) as conn:
        assert store.credits_used(conn, imported_batch) == first > 0
        lead_ids = [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id LIMIT 50")]
        create_selection_batch(conn, Selection(ids=tuple(lead_ids)), "tester", batch_id="again")
    assert len(_facts(database_url, imported_batch)) == facts_before

    result = materialize_companies(resources, instance, "again", {"overwrite": True})

    assert result.success and _gemini_calls(sandbox) == 0
    with connect(database_url) as conn:
        assert store.credits_used(conn, "again") == 0  # a cached answer costs nothing
    assert any(f["field"] == "industry" for f in _facts(database_url, "again"))


def test_facts_from_a_cached_answer_are_dated_by_its_lookup(
    database_url: str, imported_batch: str, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    """A later job applying a company answer from the cache writes its facts as observed when the answer was
    bought, not as new observations (the lead's data is no fresher for it)."""
    resources = sandbox_resources(database_url, sandbox)
    materialize_companies(resources, instance, imported_batch)
    with connect(database_url) as conn:
        conn.execute("UPDATE company_profiles SET fetched_at = fetched_at - interval '10 days'")
        fetched = {r["fetched_at"] for r in conn.execute("SELECT fetched_at FROM company_profiles")}
        lead_ids = [r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id LIMIT 50")]
        create_selection_batch(conn, Selection(ids=tuple(lead_ids)), "tester", batch_id="later")
    calls = _gemini_calls(sandbox)

    materialize_companies(resources, instance, "later", {"overwrite": True})

    assert _gemini_calls(sandbox) == calls
    facts = _facts(database_url, "later")
    from_cache = [f for f in facts if f["source"] == "company/gemini"]
    assert from_cache and all(f["observed_at"] in fetched for f in from_cache)
    own = [f for f in facts if f["source"] == "company/domain"]  # the lead's own data, read now
    assert own and all(f["observed_at"] > max(fetched) for f in own)


def _select(database_url: str, batch_id: str, where: str, *params: object) -> list[int]:
    with connect(database_url) as conn:
        ids = [r["id"] for r in conn.execute(f"SELECT id FROM leads WHERE {where} ORDER BY id", params)]
        create_selection_batch(conn, Selection(ids=tuple(ids)), "tester", batch_id=batch_id)
    return ids


def test_cut_answers_are_retried_not_cached_and_not_found_costs_nothing(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    sandbox_world: World,
    instance: dg.DagsterInstance,
    no_retry_wait: None,
) -> None:
    """A cut body is a transport fault: the client asks again, a company still failing after its attempts is
    failed (the run is retried), and nothing is cached as a rejected answer for a day."""
    assert sandbox.http_app is not None
    domain = sandbox_world.people[0].company_domain
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE leads SET company_domain = 'no-such-company.example', website = NULL, industry = NULL"
            " WHERE id = (SELECT min(id) FROM leads)"
        )
    ids = _select(database_url, "odd", "company_domain = %s OR id = (SELECT min(id) FROM leads)", domain)
    sandbox.http_app.reset()
    # 3 attempts per call: both companies fail the first run, the run's retry gets answers
    sandbox.http_app.inject("gemini", "malformed", "malformed", "malformed", "malformed", "malformed", "malformed")
    resources = sandbox_resources(database_url, sandbox)

    try:
        result = materialize_companies(resources, instance, "odd", {"concurrency": 1})
    finally:
        sandbox.http_app.reset()  # faults left unserved would hit the next test

    assert result.success
    with connect(database_url) as conn:
        profiles = {
            r["lookup_key"]: r for r in conn.execute("SELECT * FROM company_profiles WHERE provider = 'gemini'")
        }
        credits = store.credits_used(conn, "odd")
        industries = {
            r["id"]: r["industry"] for r in conn.execute("SELECT id, industry FROM leads WHERE id = ANY(%s)", (ids,))
        }
    assert sorted(p["status"] for p in profiles.values()) == ["found", "not_found"]
    assert not any("not valid JSON" in json.dumps(p["profile"]) for p in profiles.values())
    assert credits == PRICES["gemini"]  # the not-found answer costs nothing
    assert industries[ids[0]] is None and all(industries[i] for i in ids[1:])
    assert _metadata(result)["failed_leads"] == 0


def test_a_value_contradicting_a_more_confident_fact_is_recorded_not_applied(
    database_url: str, imported_batch: str, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    assert sandbox.http_app is not None
    sandbox.http_app.reset()
    with connect(database_url) as conn:
        lead = conn.execute("SELECT id FROM leads WHERE email IS NOT NULL ORDER BY id LIMIT 1").fetchone()
        assert lead is not None
        conn.execute("UPDATE leads SET industry = 'Utilities', employee_count = 3 WHERE id = %s", (lead["id"],))
        conn.execute(
            "INSERT INTO lead_facts (lead_id, field, value, source, confidence)"
            " VALUES (%s, 'industry', 'Utilities', 'crm', 95)",
            (lead["id"],),
        )
    _select(database_url, "over", "id = %s", lead["id"])

    materialize_companies(sandbox_resources(database_url, sandbox), instance, "over", {"overwrite": True})

    with connect(database_url) as conn:
        row = conn.execute("SELECT industry, employee_count FROM leads WHERE id = %s", (lead["id"],)).fetchone()
        attribution = store.lead_attribution(conn, lead["id"])
    assert row is not None and row["industry"] == "Utilities"  # the CRM's 95 beats research's 80
    assert row["employee_count"] != 3  # an imported value (confidence 50) is replaced when overwriting
    industry = next(f for f in attribution["fields"] if f["field"] == "industry")
    winner = next(f for f in industry["facts"] if f["won"])
    loser = next(f for f in industry["facts"] if f["source"] == "company/gemini")
    assert winner["source"] == "crm" and not loser["won"] and "higher confidence 95" in loser["note"]


def test_a_job_stopped_by_its_cap_resumes_without_paying_twice(
    database_url: str, imported_batch: str, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    assert sandbox.http_app is not None
    sandbox.http_app.reset()
    resources = sandbox_resources(database_url, sandbox)

    first = materialize_companies(resources, instance, imported_batch, {"max_credits": 4})

    assert first.success and _gemini_calls(sandbox) == 4
    with connect(database_url) as conn:
        assert store.credits_used(conn, imported_batch) == 4
        [progress] = store.progress_rows(conn, imported_batch)
    assert progress["status"] == "skipped" and "--max-credits 4" in progress["note"]

    second = materialize_companies(resources, instance, imported_batch, {"max_credits": 1000})

    assert second.success
    with connect(database_url) as conn:
        lookups = conn.execute("SELECT count(*) AS n FROM company_profiles WHERE provider = 'gemini'").fetchone()
        assert lookups is not None
        assert store.credits_used(conn, imported_batch) == lookups["n"] == _gemini_calls(sandbox)


def test_apify_search_discovers_the_website_of_a_company_known_only_by_name(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    sandbox_world: World,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    assert sandbox.http_app is not None
    sandbox.http_app.reset()
    company = next(c for c in sandbox_world.companies if c.linkedin_url)
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE leads SET email = NULL, website = NULL, company_domain = NULL WHERE company_key = %s",
            (normalize_company_name(company.name),),
        )
    ids = _select(database_url, "by-name", "company_key = %s", normalize_company_name(company.name))
    template = tmp_path / "search.yaml"
    template.write_text(
        "name: search\ncompany:\n  fields:\n"
        "    website: {sources: [apify_search]}\n    company_linkedin_url: {sources: [apify_search]}\n"
    )

    result = materialize_companies(
        sandbox_resources(database_url, sandbox), instance, "by-name", {"template": str(template)}
    )

    assert result.success and ids
    with connect(database_url) as conn:
        websites = {r["website"] for r in conn.execute("SELECT website FROM leads WHERE id = ANY(%s)", (ids,))}
        linkedin = conn.execute(
            "SELECT DISTINCT value FROM lead_facts WHERE batch_id = 'by-name' AND field = 'company_linkedin_url'"
        ).fetchall()
        assert store.credits_used(conn, "by-name") == 0.5  # one search for the company, charged once
    assert websites == {company.domain}
    assert linkedin == [{"value": company.linkedin_url}]
    assert len(sandbox.http_app.log.records("apify")) >= 1 and _gemini_calls(sandbox) == 0


def test_companies_the_provider_could_not_answer_are_retried_by_dagster(
    database_url: str,
    imported_batch: str,
    sandbox: Sandbox,
    sandbox_world: World,
    instance: dg.DagsterInstance,
    no_retry_wait: None,
) -> None:
    assert sandbox.http_app is not None
    sandbox.http_app.reset()
    domain = sandbox_world.people[0].company_domain
    ids = _select(database_url, "flaky", "company_domain = %s OR email LIKE %s", domain, f"%@{domain}")
    sandbox.http_app.inject("gemini", "500", "500", "500")  # one lookup exhausts the client's 3 attempts
    try:
        result = materialize_companies(sandbox_resources(database_url, sandbox), instance, "flaky", {"concurrency": 1})
    finally:
        sandbox.http_app.reset()

    assert result.success and ids
    with connect(database_url) as conn:
        failures = conn.execute("SELECT count(*) AS n FROM enrichment_failures WHERE job_id = 'flaky'").fetchone()
        industries = {r["industry"] for r in conn.execute("SELECT industry FROM leads WHERE id = ANY(%s)", (ids,))}
        assert store.credits_used(conn, "flaky") == 1
    assert failures == {"n": 0} and None not in industries


def test_the_run_reads_its_leads_a_page_of_companies_at_a_time_and_writes_what_one_page_does(
    database_url: str, imported_batch: str, sandbox: Sandbox, instance: dg.DagsterInstance, monkeypatch: MonkeyPatch
) -> None:
    """A batch of 300,000 leads held whole took most of a gigabyte: the run groups it a page at a time and reads
    its companies' leads a page at a time, and writes the facts a run reading the batch at once writes."""
    resources = sandbox_resources(database_url, sandbox)
    reads: list[int] = []
    company_inputs = store.company_inputs

    def counted(conn: store.Connection, batch_id: str, lead_ids: list[int]) -> dict[int, dict[str, Any]]:
        reads.append(len(lead_ids))
        return company_inputs(conn, batch_id, lead_ids)

    monkeypatch.setattr(store, "company_inputs", counted)
    monkeypatch.setattr(store, "COMPANY_INPUT_PAGE", 1000)  # the 300 leads in one page
    materialize_companies(resources, instance, imported_batch)  # (answers cached: the runs below read them)
    materialize_companies(resources, instance, imported_batch)
    whole = _written(database_url, imported_batch)
    monkeypatch.setattr(store, "COMPANY_INPUT_PAGE", 40)

    materialize_companies(resources, instance, imported_batch)  # rewrites the batch's facts (from the cache)

    [_, everything, *by_page] = reads
    assert len(by_page) >= 300 // 80 and max(by_page) < 80  # (a page ends with a whole company: past 40 leads)
    assert sum(by_page) == everything >= 290
    assert _written(database_url, imported_batch) == whole != []


def _written(database_url: str, batch_id: str) -> list[tuple[Any, ...]]:
    """The batch's facts as a run writes them, by lead (threads write companies in any order, and a fact is dated
    when written unless it comes from the cache)."""
    facts = _facts(database_url, batch_id)
    return sorted(tuple(json.dumps(f[k], default=str) for k in f if k not in ("id", "observed_at")) for f in facts)


def _comparable(database_url: str, batch_id: str) -> list[dict[str, Any]]:
    """The batch's facts as a reader compares two runs: without their row id and observation time."""
    rows = [{k: v for k, v in f.items() if k not in ("id", "observed_at")} for f in _facts(database_url, batch_id)]
    return sorted(rows, key=lambda f: (f["lead_id"], f["field"], f["source"]))


def test_a_rerun_served_from_the_cache_writes_the_facts_the_fresh_run_wrote(
    database_url: str, imported_batch: str, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    """The same answer gives the same facts, whether just bought or read back from the cache: a rerun of the
    job (or its resumption after a kill) charges the answers it paid again, with the same billing record
    (Gemini's tokens included), on the same facts."""
    assert sandbox.http_app is not None
    resources = sandbox_resources(database_url, sandbox)
    materialize_companies(resources, instance, imported_batch)
    fresh = _comparable(database_url, imported_batch)
    sandbox.http_app.reset()

    materialize_companies(resources, instance, imported_batch)

    assert _gemini_calls(sandbox) == 0
    cached = _comparable(database_url, imported_batch)
    assert any(f["details"].get("provider_cost") for f in fresh)
    assert len(cached) == len(fresh)
    assert [a for a, b in zip(fresh, cached, strict=True) if a != b] == []


def test_another_list_of_the_same_companies_gets_the_same_facts_from_the_cache_for_free(
    database_url: str, imported_batch: str, world_leads_csv: Path, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    """The same people in another list, enriched by another job, get the facts the first job bought, from the
    cache: the same values, confidences, sources and notes, at cost 0 and without a billing record."""
    assert sandbox.http_app is not None
    resources = sandbox_resources(database_url, sandbox)
    materialize_companies(resources, instance, imported_batch)
    with connect(database_url) as conn:
        create_list(conn, "second", owner="tester")
    assert import_file(database_url, world_leads_csv, "second", batch_id="import-second")["results"]["imported"]
    sandbox.http_app.reset()

    materialize_companies(resources, instance, "import-second")

    assert _gemini_calls(sandbox) == 0
    billing = {"price_item", "provider_cost", "provider_cost_unit"}

    def by_person(batch_id: str) -> dict[tuple[int, str, str], dict[str, Any]]:
        """The batch's facts by the lead's row in its file (both lists import the same file)."""
        with connect(database_url) as conn:
            rows = conn.execute("SELECT id, row_number() OVER (PARTITION BY list_id ORDER BY id) AS n FROM leads")
            row_of = {r["id"]: r["n"] for r in rows}
        return {
            (row_of[f["lead_id"]], f["field"], f["source"]): {
                "value": f["value"],
                "confidence": f["confidence"],
                "details": {k: v for k, v in f["details"].items() if k not in billing},
            }
            for f in _facts(database_url, batch_id)
        }

    first, second = by_person(imported_batch), by_person("import-second")
    assert second == first and len(second) > 1000
    assert all(f["cost"] == 0 and not billing & set(f["details"]) for f in _facts(database_url, "import-second"))


def _companies_at_once(
    database_url: str, sandbox: Sandbox, monkeypatch: MonkeyPatch, batches: tuple[str, str]
) -> tuple[dict[str, dg.ExecuteInProcessResult], list[tuple[object, str]], bool]:
    """Run ``company_profiles`` for two ``batches`` at once, the second started while the first is in the middle of
    its lookups (each held until the second has asked a provider for a company of the first again, or waits for a
    lock). Returns the runs' results by batch, every provider call (company key, provider) in order, and whether a
    company was asked of a provider twice."""
    real_call = CompanyEnricher._call
    asked: list[tuple[object, str]] = []
    release, started, twice = threading.Event(), threading.Event(), threading.Event()

    def held_call(self: CompanyEnricher, identity: Identity, provider: str) -> ProviderAnswer:
        """Each call waits for ``release``: the first batch's run stays in the middle of its lookups meanwhile."""
        if (identity.key, provider) in asked:  # only the other batch's run asks for a company again
            twice.set()
        asked.append((identity.key, provider))
        started.set()
        assert release.wait(60)
        return real_call(self, identity, provider)

    monkeypatch.setattr(CompanyEnricher, "_call", held_call)
    resources = sandbox_resources(database_url, sandbox)
    results: dict[str, dg.ExecuteInProcessResult] = {}

    def run(batch: str) -> None:
        with instance_of_a_run_at_once() as instance:
            results[batch] = materialize_companies(resources, instance, batch)

    threads = [threading.Thread(target=run, args=(batch,)) for batch in batches]
    threads[0].start()
    assert started.wait(60)  # the first batch's run is in the middle of its lookups
    threads[1].start()
    deadline = time.monotonic() + 60
    while not twice.is_set() and time.monotonic() < deadline:
        with connect(database_url) as conn:
            if conn.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone():
                break
        time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(120)
    assert all(results[batch].success for batch in batches)
    return results, asked, twice.is_set()


def test_two_batches_of_the_same_leads_at_once_buy_each_company_once(
    database_url: str, imported_batch: str, sandbox: Sandbox, monkeypatch: MonkeyPatch
) -> None:
    """Two `leads enrich` of the same leads at once (cron jobs that overlap) are two batches, whose stages' locks
    differed: each bought the companies neither found cached (500 leads of 50 companies: 76 credits, not 50). The
    second batch's stage now waits for the first's on their list, then reads the companies it bought from the
    cache: every company is bought once, and the second batch spends nothing."""
    assert sandbox.http_app is not None
    with connect(database_url) as conn:
        lead_ids = tuple(r["id"] for r in conn.execute("SELECT id FROM leads ORDER BY id"))
        create_selection_batch(conn, Selection(ids=lead_ids), "tester", batch_id="again")
    sandbox.http_app.reset()
    _, asked, twice = _companies_at_once(database_url, sandbox, monkeypatch, (imported_batch, "again"))
    assert not twice and len(asked) == len(set(asked)) == _gemini_calls(sandbox) > 0
    with connect(database_url) as conn:
        assert store.credits_used(conn, "again") == 0 < store.credits_used(conn, imported_batch)
    assert any(f["field"] == "industry" for f in _facts(database_url, "again"))


def test_two_lists_of_the_same_companies_at_once_buy_each_company_once(
    database_url: str, imported_batch: str, world_leads_csv: Path, sandbox: Sandbox, monkeypatch: MonkeyPatch
) -> None:
    """Jobs of two lists at once take no stage lock in common: each looked a company both lists hold up in the
    cache before the other had stored it, and bought it too (this file in two lists: 60 Gemini calls and credits
    for 30 companies). A job now waits for the other's purchase of a company it finds missing, then reads it from
    the cache: the two jobs together make the calls and spend the credits of one, one per company in the cache."""
    assert sandbox.http_app is not None
    with connect(database_url) as conn:
        create_list(conn, "second", owner="tester")
    assert import_file(database_url, world_leads_csv, "second", batch_id="import-second")["results"]["imported"]
    sandbox.http_app.reset()
    _, asked, twice = _companies_at_once(database_url, sandbox, monkeypatch, (imported_batch, "import-second"))
    assert not twice and len(asked) == len(set(asked)) == _gemini_calls(sandbox) > 0
    with connect(database_url) as conn:
        bought = conn.execute(
            "SELECT count(*) AS calls, sum(credits) AS credits FROM company_profiles WHERE provider = 'gemini'"
        ).fetchone()
        spent = store.credits_used(conn, imported_batch) + store.credits_used(conn, "import-second")
    assert bought is not None and bought["calls"] == _gemini_calls(sandbox) and spent == float(bought["credits"]) > 0
    assert any(f["field"] == "industry" for f in _facts(database_url, "import-second"))


def test_a_free_run_s_metadata_says_no_provider_was_asked_and_no_cap_is_unlimited(
    database_url: str, imported_batch: str, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    """Launched from the UI with the free template, the run's lookups were a table header with no row under it, and
    its max_credits read "-" where the check beside it read "unlimited"."""
    asked = _gemini_calls(sandbox)
    result = materialize_companies(
        sandbox_resources(database_url, sandbox), instance, imported_batch, {"template": "basic"}
    )

    metadata = _metadata(result)
    assert metadata["facts_written"] > 0 and _gemini_calls(sandbox) == asked
    assert metadata["lookups"] == "none: no provider was asked (the values came from the leads' own data)"
    assert metadata["max_credits"] == "unlimited"
    [budget] = [e for e in result.get_asset_check_evaluations() if e.check_name == "job_within_max_credits"]
    assert budget.metadata["max_credits"].value == metadata["max_credits"]


def test_a_partition_no_import_wrote_is_refused_in_words_a_user_can_act_on(
    database_url: str, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    """The drop folder registers a file's partition before its run imports it: an empty file's import is refused
    before it writes anything, and enriching that partition from the UI said it 'does not exist in leads.batches'."""
    result = materialize_companies(
        sandbox_resources(database_url, sandbox), instance, "import-fair-0e6ccb-empty", raise_on_error=False
    )

    assert step_failure(result) == (
        "batch 'import-fair-0e6ccb-empty' has no leads to enrich: it is no import's (one refused before it wrote"
        " anything, as its batch_leads run says, leaves none) and no selection's; import a file, or select leads"
        " with `leads enrich`"
    )


def test_settings_that_bound_nothing_are_refused_in_one_line_before_any_lookup(
    database_url: str, imported_batch: str, sandbox: Sandbox, instance: dg.DagsterInstance
) -> None:
    """``max_credits: -5`` in the launchpad's run config failed the enrichment job table's check: a psycopg
    CheckViolation, retried three times over a minute and a half, the run then "Exceeded max_retries of 3"; and a
    negative ``cache_ttl_days`` took every stored company for stale. Each is one line, no job, no lookup; so are
    a ``concurrency`` below 1 and a ``requests_per_second`` of a provider it does not pace or of no rate."""
    resources = sandbox_resources(database_url, sandbox)
    asked = _gemini_calls(sandbox)
    cases = [
        ({"max_credits": -5}, "max_credits must be a number of credits >= 0; got -5"),
        ({"max_credits": float("nan")}, "max_credits must be a number of credits >= 0; got nan"),
        ({"cache_ttl_days": -1}, "cache_ttl_days must be a number of days >= 0; got -1"),
        # taken as 1, and a misspelt provider paced nothing, both without a word
        ({"concurrency": 0}, "concurrency must be a number of companies >= 1; got 0"),
        (
            {"requests_per_second": {"gemni": 2}},
            "requests_per_second: unknown provider 'gemni'; expected gemini or apify_search",
        ),
        ({"requests_per_second": {"gemini": 0}}, "requests_per_second.gemini must be a number > 0; got 0.0"),
    ]
    for config, expected in cases:
        result = materialize_companies(resources, instance, imported_batch, config, raise_on_error=False)
        assert step_failure(result) == expected
        assert len(result.get_step_failure_events()) == 1  # not retried
    assert _gemini_calls(sandbox) == asked
    with connect(database_url) as conn:
        assert store.find_job(conn, imported_batch) is None
