"""The estimate of a company enrichment over many companies: one query for the cache, not one per company."""

from __future__ import annotations

from datetime import timedelta

from leads_pipeline.lib.enrichment.jobs import estimate
from leads_pipeline.lib.enrichment.templates import load_template
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.store import enrichment as store
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline.lib.store.search import create_selection_batch

USER = "tester"
COMPANIES = 200


def test_the_estimate_reads_the_cache_of_every_company_at_once(database_url: str, statements: list[str]) -> None:
    template = load_template("standard")
    [provider, *_] = [p for p in template.providers() if p != "domain"]
    with connect(database_url) as conn:
        list_id = create_list(conn, "prospects", owner=USER).id
        conn.execute(  # two leads per company, known by their company's domain
            "INSERT INTO leads (list_id, first_name, company, company_domain)"
            " SELECT %s, 'Lead ' || i, 'Company ' || (i %% %s), 'c' || (i %% %s) || '.example'"
            " FROM generate_series(1, %s) i",
            (list_id, COMPANIES, COMPANIES, 2 * COMPANIES),
        )
        earlier, _ = create_selection_batch(conn, Selection(lists=("prospects",)), USER)
        store.store_profile(  # one company looked up already (by an earlier job): free
            conn,
            lookup_key="c7.example",
            provider=provider,
            domain="c7.example",
            status="found",
            name="Company 7",
            name_key=None,
            profile={"industry": "Software"},
            sources=[],
            credits=1.0,
            details={},
            job_id=earlier,
            ttl=timedelta(days=30),
        )
        batch_id, _ = create_selection_batch(conn, Selection(lists=("prospects",)), USER)
        conn.commit()
        statements.clear()

        plan = estimate(conn, batch_id, ["company"], template, overwrite=False)

    company = plan["sources"]["company"]
    assert (plan["leads"], company["companies"], company["leadsNeeding"]) == (2 * COMPANIES, COMPANIES, 2 * COMPANIES)
    assert company["cacheHits"] == 1 and company["lookups"] >= COMPANIES
    assert len(statements) < 10, f"{len(statements)} statements for {COMPANIES} companies"
