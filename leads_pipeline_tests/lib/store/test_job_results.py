"""A job's results and breakdown (``leads jobs show``): what "found" and "enriched" count."""

from __future__ import annotations

from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.store import bulk
from leads_pipeline.lib.store.contacts import Fact, insert_facts
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.enrichment import record_failures, result_counts
from leads_pipeline.lib.store.search import create_selection_batch
from leads_pipeline_tests.lib.scoring.support import add_leads


def test_found_counts_new_values_the_same_way_for_every_source(database_url: str) -> None:
    """Verifying an address a lead had, typing its number, or a risky (catch-all) guess left as a fact is no
    find; a lead the job gave nothing new is not enriched (a job stopped by its cap reaches few leads)."""
    with connect(database_url) as conn:
        _list, ids = add_leads(conn, [{"first_name": f"p{i}"} for i in range(6)], "results")
        create_selection_batch(conn, Selection(ids=tuple(ids)), "tester", batch_id="job-results")
        a, b, c, d, e, f = ids
        facts = [
            Fact(a, "email", "a@x.example", "existing", 95, 0.0, {"status": "valid"}),  # verified, had it
            Fact(b, "email", "b@x.example", "pattern", 95, 0.0, {"status": "valid"}),  # found, written
            Fact(c, "email", "c@x.example", "apify:people", 80, 0.0, {"status": "catch_all", "risky": True}),
            Fact(a, "phone", "+12025550101", "phonenumbers", 90, 0.0, {"valid": True}),  # typed, had it
            Fact(d, "phone", "+12025550102", "apify:people", 80, 0.0, {"valid": True}),  # direct dial found
            Fact(e, "linkedin_url", "https://www.linkedin.com/in/e", "apify:search", 90, 0.0, {}),
            Fact(f, "industry", "Retail", "company/gemini", 80, 0.0, {"applied": False, "reason": "had it"}),
            Fact(b, "industry", "Retail", "company/gemini", 80, 0.0, {"applied": True}),
        ]
        insert_facts(conn, "job-results", facts)
        counts = result_counts(conn, "job-results")
    assert (counts["email_found"], counts["phone_found"], counts["linkedin_found"], counts["company_found"]) == (
        1,
        1,
        1,
        1,
    )
    assert counts["enriched"] == 3 and counts["email_verified"] == 2  # b, d, e; a and b verified


def test_a_company_fact_an_earlier_job_gave_the_lead_is_no_find(database_url: str) -> None:
    """Facts no lead column holds (technologies, hq_city, company_size) carry no ``applied`` flag and were
    counted as found on every run: enriching the same leads again reported them enriched with nothing new
    (`leads jobs show`: company found 2, enriched 2, every value already there)."""
    with connect(database_url) as conn:
        _list, ids = add_leads(conn, [{"first_name": f"q{i}"} for i in range(3)], "again")
        same, changed, fresh = ids
        create_selection_batch(conn, Selection(ids=tuple(ids)), "tester", batch_id="job-first")
        create_selection_batch(conn, Selection(ids=tuple(ids)), "tester", batch_id="job-again")
        insert_facts(
            conn,
            "job-first",
            [
                Fact(same, "technologies", '["AWS"]', "company/gemini", 80, 0.0, {}),
                Fact(changed, "hq_city", "Austin", "company/gemini", 80, 0.0, {}),
            ],
        )
        insert_facts(
            conn,
            "job-again",
            [
                Fact(same, "technologies", '["AWS"]', "company/gemini", 80, 0.0, {}),  # had it: no find
                Fact(changed, "hq_city", "Denver", "company/gemini", 80, 0.0, {}),  # a new value
                Fact(fresh, "company_size", "51-200", "company/gemini", 80, 0.0, {}),  # a first value
            ],
        )
        first, again = result_counts(conn, "job-first"), result_counts(conn, "job-again")
    assert (first["company_found"], first["enriched"]) == (2, 2), "a later job does not undo an earlier find"
    assert (again["company_found"], again["enriched"]) == (2, 2)


def test_a_lead_deleted_while_the_job_ran_is_neither_failed_nor_found(database_url: str) -> None:
    """`leads bulk delete` (a list deleted, a merge: the row stays) of leads a job was looking up: a failed lookup
    of one still got its failure row, counted among the job's failed leads, and the address found for the other
    (a fact, the record of what was bought, its column left alone) counted it as found and enriched."""
    with connect(database_url) as conn:
        _list, ids = add_leads(conn, [{"first_name": n} for n in ("Pat", "Lou", "Kim")], "deleted meanwhile")
        found, failed, kept = ids
        create_selection_batch(conn, Selection(ids=tuple(ids)), "tester", batch_id="job-deleted")
        conn.execute(
            "INSERT INTO enrichment_jobs (id, sources, template, created_by)"
            " VALUES ('job-deleted', '{email}', 's', 't')"
        )
    with connect(database_url) as deleting:
        bulk.delete(deleting, Selection.build(ids=[found, failed]), "tester")
    with connect(database_url) as conn:
        address = Fact(found, "email", "pat@x.example", "pattern", 95, 0.0, {"status": "valid"})
        insert_facts(conn, "job-deleted", [address])
        record_failures(conn, "job-deleted", "pattern", [failed, kept], "SMTP: timed out")
    with connect(database_url) as conn:
        failures = [r["lead_id"] for r in conn.execute("SELECT lead_id FROM enrichment_failures")]
        counts = result_counts(conn, "job-deleted")
    assert failures == [kept]
    assert (counts["enriched"], counts["email_found"], counts["email_verified"], counts["failed"]) == (0, 0, 0, 1)
