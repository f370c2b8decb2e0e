"""``lead_attribution`` (``leads show ID --facts``): which fact won a field agrees with the lead's columns."""

from __future__ import annotations

import json

from leads_pipeline.commands.common import json_text
from leads_pipeline.lib.store.contacts import Fact, insert_facts
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.enrichment import lead_attribution
from leads_pipeline_tests.lib.scoring.support import add_leads
from leads_pipeline_tests.support import write_while_deleted


def test_a_fact_left_out_of_an_empty_column_did_not_win(database_url: str) -> None:
    """A catch-all address found by the people search is kept as a risky fact and not written to the lead
    (only valid finds are): --facts must not call it the winner of the empty email column."""
    with connect(database_url) as conn:
        _list, [lead] = add_leads(conn, [{"first_name": "Kelly", "last_name": "Kemp"}], "attribution")
        risky = {"status": "catch_all", "risky": True, "reason": "catch_all by smtp"}
        insert_facts(
            conn,
            None,
            [
                Fact(lead, "email", "kelly@catchall.example", "apify:people", 80, 0.0, risky),
                Fact(lead, "email_status", "catch_all", "smtp", 50, 0.0, {}),
            ],
        )
        fields = {f["field"]: f for f in lead_attribution(conn, lead)["fields"]}
    email = fields["email"]
    assert email["value"] is None and not any(f["won"] for f in email["facts"])
    assert email["facts"][0]["note"] == "catch_all by smtp"  # shown in the won column instead of "yes"
    status = fields["email_status"]  # no column: the best fact is the visible value
    assert status["value"] == "catch_all" and status["facts"][0]["won"]


def test_the_values_of_a_number_field_are_numbers(database_url: str) -> None:
    """Facts are stored as text: `leads show --facts --json` wrote an employee count and a revenue as strings
    ("2500000.50", "1200") beside the lead's own number in ``fields``, where every --json output writes amounts
    and counts as numbers. They are numbers now, the lead's current value too; the text of other fields stays."""
    with connect(database_url) as conn:
        _list, [lead] = add_leads(conn, [{"first_name": "Kim", "employee_count": 1200}], "numbers")
        insert_facts(
            conn,
            None,
            [
                Fact(lead, "employee_count", "1200", "company/gemini", 80, 0.0, {}),
                Fact(lead, "employee_count", "1,100", "company/apify", 60, 0.0, {}),  # not a number: left as text
                Fact(lead, "annual_revenue", "2500000.50", "company/gemini", 80, 0.0, {}),
                Fact(lead, "industry", "1200", "company/gemini", 80, 0.0, {}),
            ],
        )
        fields = {f["field"]: f for f in lead_attribution(conn, lead)["fields"]}
    shown = json.loads(json_text(fields))
    count = shown["employee_count"]
    assert (count["value"], [f["value"] for f in count["facts"]]) == (1200, [1200, "1,100"])
    assert count["facts"][0]["won"]
    assert shown["annual_revenue"]["facts"][0]["value"] == 2500000.5
    assert shown["industry"]["facts"][0]["value"] == "1200"


def test_a_failed_photo_download_wins_nothing_and_says_why(database_url: str) -> None:
    """A photo that could not be downloaded is kept as a fact without a value (and its error): --facts called
    it the winner of ``linkedin_photo``, value "None", with no note saying what happened."""
    with connect(database_url) as conn:
        _list, [failed, stored] = add_leads(conn, [{"first_name": "Pat"}, {"first_name": "Lou"}], "photos")
        error = {"url": "https://media.example/p.jpg", "error": "HTTP 404 from media.example"}
        insert_facts(
            conn,
            None,
            [
                Fact(failed, "linkedin_photo", None, "download", 0, 0.0, error),
                Fact(stored, "linkedin_photo", None, "download", 0, 0.0, error),
                Fact(stored, "linkedin_photo", "/media/ab12.jpg", "download", 90, 0.0, {"sha256": "ab12"}),
            ],
        )
        photo = {f["field"]: f for f in lead_attribution(conn, failed)["fields"]}["linkedin_photo"]
        later = {f["field"]: f for f in lead_attribution(conn, stored)["fields"]}["linkedin_photo"]
    assert photo["value"] is None and not any(f["won"] for f in photo["facts"])
    assert photo["facts"][0]["note"] == "HTTP 404 from media.example"
    assert later["value"] == "/media/ab12.jpg" and [f["won"] for f in later["facts"]] == [True, False]


def test_facts_of_a_lead_deleted_while_they_were_looked_up_are_left_out(database_url: str) -> None:
    """`leads enrich` (email, phone, LinkedIn) while `leads imports undo` (or a purge) deleted leads it was
    looking up: writing their facts failed the whole batch on the foreign key, the other leads' facts with it.
    The facts of a lead gone are left out now, once its deletion committed."""
    with connect(database_url) as conn:
        _list, [gone, kept] = add_leads(conn, [{"first_name": "Pat"}, {"first_name": "Lou"}], "undone")

    def write() -> int:
        with connect(database_url) as conn:
            return insert_facts(conn, None, [Fact(lead, "title", "CTO", "apify", 80, 0.5) for lead in (gone, kept)])

    assert write_while_deleted(database_url, gone, write) == 1
    with connect(database_url) as conn:
        assert [r["lead_id"] for r in conn.execute("SELECT lead_id FROM lead_facts")] == [kept]


def test_a_failure_of_a_lead_deleted_while_it_was_looked_up_is_left_out(database_url: str) -> None:
    """A lookup that failed for leads an undo deleted meanwhile: recording why failed on the foreign key, and the
    job's other leads' failures with it."""
    from leads_pipeline.lib.store.enrichment import record_failures

    with connect(database_url) as conn:
        _list, [gone, kept] = add_leads(conn, [{"first_name": "Pat"}, {"first_name": "Lou"}], "undone")
        conn.execute("INSERT INTO batches (id, kind) VALUES ('job-1', 'selection')")
        conn.execute(
            "INSERT INTO enrichment_jobs (id, sources, template, created_by) VALUES ('job-1', '{phone}', 's', 't')"
        )

    def record() -> None:
        with connect(database_url) as conn:
            record_failures(conn, "job-1", "twilio", [gone, kept], "Twilio: timed out")

    write_while_deleted(database_url, gone, record)
    with connect(database_url) as conn:
        assert [r["lead_id"] for r in conn.execute("SELECT lead_id FROM enrichment_failures")] == [kept]


def test_a_lead_deleted_softly_while_it_was_looked_up_keeps_its_columns_and_its_facts(database_url: str) -> None:
    """`leads enrich` (contacts, company) while `leads bulk delete` (a list deleted, a merge: the row stays)
    deleted leads it had read: the found email, LinkedIn URL and company values were written into the deleted
    lead and counted as leads updated. Its columns stay as they were now; its facts are written (they record
    what was bought, and count in the job's credits)."""
    from leads_pipeline.lib.filters import Selection
    from leads_pipeline.lib.store import bulk
    from leads_pipeline.lib.store.contacts import update_lead_columns
    from leads_pipeline.lib.store.enrichment import FactRow, replace_company_facts

    with connect(database_url) as conn:
        _list, [gone, kept] = add_leads(conn, [{"first_name": "Pat"}, {"first_name": "Lou"}], "deleted")
        conn.execute("INSERT INTO batches (id, kind) VALUES ('job-1', 'selection')")
    with connect(database_url) as deleting:
        bulk.delete(deleting, Selection.build(ids=[gone]), "tester")
    with connect(database_url) as conn:
        both = (gone, kept)
        assert update_lead_columns(conn, "email", {lead: f"{lead}@acme.example" for lead in both}, overwrite=False) == {
            kept
        }
        url = "https://www.linkedin.com/in/{}"
        assert update_lead_columns(conn, "linkedin_url", {lead: url.format(lead) for lead in both}, overwrite=True) == {
            kept
        }
        facts = [FactRow(lead, "industry", "Software", "company/apify", 80, 0.5, {}) for lead in both]
        replace_company_facts(conn, "job-1", list(both), facts, {lead: {"industry": "Software"} for lead in both})
    with connect(database_url) as conn:
        rows = {r["id"]: r for r in conn.execute("SELECT id, email, linkedin_url, industry FROM leads")}
        assert (rows[gone]["email"], rows[gone]["linkedin_url"], rows[gone]["industry"]) == (None, None, None)
        assert rows[kept]["email"] == f"{kept}@acme.example" and rows[kept]["industry"] == "Software"
        assert rows[kept]["linkedin_url"] == url.format(kept)
        facts_of = sorted(r["lead_id"] for r in conn.execute("SELECT lead_id FROM lead_facts"))
        assert facts_of == [gone, kept]
