"""The estimate of a company enrichment over many companies: one query for the cache, not one per company."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import pytest

from leads_pipeline.lib.enrichment.companies import Identity
from leads_pipeline.lib.enrichment.engine import plan_units
from leads_pipeline.lib.enrichment.jobs import estimate
from leads_pipeline.lib.enrichment.templates import load_template
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.privacy.crypto import Opener, lead_columns
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


def test_the_estimate_reads_leads_a_page_at_a_time_and_opens_only_the_emails_it_needs(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "COMPANY_INPUT_PAGE", 50)
    pages: list[int] = []
    company_input_pages = store.company_input_pages

    def counted(conn: store.Connection, batch_id: str) -> Iterator[list[dict[str, Any]]]:
        for rows in company_input_pages(conn, batch_id):
            pages.append(len(rows))
            yield rows

    monkeypatch.setattr(store, "company_input_pages", counted)
    loaded: list[str] = []
    text = Opener.text

    def recording(opener: Opener, data: bytes | bytearray | memoryview) -> str:
        loaded.append(value := text(opener, data))
        return value

    monkeypatch.setattr(Opener, "text", recording)
    template = load_template("standard")
    with connect(database_url) as conn:
        list_id = create_list(conn, "prospects", owner=USER).id
        leads = [  # 100 leads known by their company's domain (20 companies), with an email never needed
            (f"Company {i % 20}", f"company{i % 20}", f"c{i % 20}.example", f"known{i}@c{i % 20}.example")
            for i in range(100)
        ]
        leads += [(None, None, None, f"p{i}@corp{i % 5}.example") for i in range(10)]  # known by email only
        leads += [("COMPANY 3 Inc", "company3", None, None)] * 10  # by a name another lead has a domain for
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO leads (list_id, company, company_key, company_domain, email, email_bidx, email_domain)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(list_id, *lead[:3], *lead_columns("email", lead[3]).values()) for lead in leads],
            )
        batch_id, _ = create_selection_batch(conn, Selection(lists=("prospects",)), USER)
        conn.commit()
        loaded.clear()

        plan = estimate(conn, batch_id, ["company"], template, overwrite=False)
        read, opened = list(pages), list(loaded)
        emails = partial(store.lead_emails, conn)
        units, orphans = plan_units(company_input_pages(conn, batch_id), template, False, emails)

    assert read == [50, 50, 20]  # 120 leads in pages of 50
    assert not [v for v in opened if v.startswith("known")]  # no email of a lead whose company has a domain
    assert {v for v in opened if v.startswith("p")} >= {f"p{i}@corp{i % 5}.example" for i in range(10)}
    company = plan["sources"]["company"]
    assert (company["companies"], company["leadsNeeding"], company["leadsWithoutCompany"]) == (25, 120, 0)
    assert orphans == 0
    everything = frozenset(template.company)
    named = everything - {"company", "company_domain"}  # what the leads with a company and its domain lack
    assert [(u.identity, sorted(u.lead_ids), u.needed) for u in units] == [
        # company 3's domain takes in the ten leads known by its name only (ids 111-120, without a domain)
        (Identity(f"c{k}.example", f"c{k}.example", "company_domain", f"Company {k}"), ids, needed)
        for k in range(20)
        for ids, needed in [
            (list(range(k + 1, 101, 20)) + list(range(111, 121)), everything - {"company"})
            if k == 3
            else (list(range(k + 1, 101, 20)), named)
        ]
    ] + [
        (Identity(f"corp{k}.example", f"corp{k}.example", "email", None), [101 + k, 106 + k], everything)
        for k in range(5)
    ]


def test_a_company_is_named_after_its_first_lead_with_a_company_name() -> None:
    """The run asks providers by the company's name: a first lead without one does not leave it nameless."""
    template = load_template("standard")
    blank = {"company_key": None, "company_domain": "acme.example", "website": None, "fact_fields": []}
    blank |= {"industry": None, "employee_count": None, "annual_revenue": None}
    rows = [
        {**blank, "id": 1, "company": None},
        {**blank, "id": 2, "company": "Acme"},
        {**blank, "id": 3, "company": "ACME Inc"},
    ]

    units, orphans = plan_units([rows[:2], rows[2:]], template, False, lambda ids: {})

    assert orphans == 0
    assert [(u.identity, list(u.lead_ids)) for u in units] == [
        (Identity("acme.example", "acme.example", "company_domain", "Acme"), [1, 2, 3])
    ]
