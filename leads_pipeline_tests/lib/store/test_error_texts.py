"""Error texts kept in clear (an enrichment failure's reason, a CRM run's message) never keep the contact data a
provider's error quotes: a database dump must hold no email or phone in clear."""

from __future__ import annotations

from leads_pipeline.lib.store import crm, enrichment
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.lists import create_list
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import import_file

EMAIL = "ana.garcia@acme.es"
PHONE = "+34 912 345 678"


def test_failure_reasons_and_run_messages_mask_addresses_and_numbers(database_url: str) -> None:
    with connect(database_url) as conn:
        create_list(conn, "fair", owner="tester")
    import_file(database_url, DEMO_FILE, "fair")
    with connect(database_url) as conn:
        lead = conn.execute("SELECT min(id) AS id FROM leads").fetchone()
        assert lead is not None
        conn.execute("INSERT INTO batches (id, kind) VALUES ('job-1', 'selection')")
        conn.execute(
            "INSERT INTO enrichment_jobs (id, sources, template, created_by) VALUES ('job-1', '{phone}', 's', 't')"
        )
        enrichment.record_failures(conn, "job-1", "twilio", [lead["id"]], f"Twilio: no line for {PHONE} ({EMAIL})")
        conn.execute("INSERT INTO crm_connections (name, crm) VALUES ('hub', 'hubspot')")
        run = crm.start_run(conn, "hub", "push", None, "tester")
        crm.update_run(conn, run, status="failed", message=f"HubSpot refused {EMAIL} as invalid", finished=True)
        reason = conn.execute("SELECT reason FROM enrichment_failures").fetchone()
        message = conn.execute("SELECT message, status FROM crm_sync_runs WHERE id = %s", (run,)).fetchone()
    assert reason is not None and message is not None
    assert reason["reason"] == "Twilio: no line for <phone> (<email>)"
    assert message["message"] == "HubSpot refused <email> as invalid" and message["status"] == "failed"
