"""CRM sync benchmarks against the sandbox emulators, through the real client libraries and the real store.

Throughput: push N leads (default 100,000) to the HubSpot emulator limited to HubSpot's published burst
(190 requests / 10 s, 100 contacts a request) and report records/min and the ratio to that ceiling.
Reliability: push M leads (default 20,000) to each of the four emulators with 20% of requests failing
transiently (429, 500, 503, stalls past the client's timeout, cut bodies), then run one later sync, and report
delivered / attempted and the duplicates created in the CRM. Run alone: ``python -m benchmarks.crm``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from typing import Any

HUBSPOT_BURST = (190, 10.0)
MAPPINGS: dict[str, dict[str, str]] = {
    "hubspot": {"email": "email", "first_name": "firstname", "last_name": "lastname", "company": "company"},
    "salesforce": {"id": "Leads_Id__c", "email": "Email", "first_name": "FirstName", "last_name": "LastName",
                   "company": "Company"},
    "pipedrive": {"email": "email", "first_name": "first_name", "last_name": "last_name", "company": "Company"},
    "gohighlevel": {"email": "email", "first_name": "firstName", "last_name": "lastName", "company": "companyName"},
}  # fmt: skip
CLIENT_TIMEOUT_S = {"hubspot": 2.0, "salesforce": 10.0, "pipedrive": 0.5, "gohighlevel": 0.5}


def _database() -> str:
    from benchmarks.run import OUT
    from leads_pipeline.lib.runtime import prepare_environment
    from leads_pipeline.lib.store.migrations import apply_migrations

    os.environ.setdefault("LEADS_HOME", str(OUT / "home"))
    env = prepare_environment()
    apply_migrations(env.database_url)
    return env.database_url


def _make_list(database_url: str, name: str, count: int) -> int:
    """A list of ``count`` distinct leads, copied in one statement (the import path has its own benchmark); the
    emails sealed with their blind index and domain, as every writer stores them."""
    from leads_pipeline.lib.privacy.crypto import lead_columns
    from leads_pipeline.lib.store.db import transaction
    from leads_pipeline.lib.store.lists import create_list

    with transaction(database_url) as conn:
        list_id = create_list(conn, name, owner="bench").id
        columns = ("list_id", "first_name", "last_name", "company", "email", "email_bidx", "email_domain")
        with conn.cursor().copy(f"COPY leads ({', '.join(columns)}) FROM STDIN") as copy:
            for i in range(1, count + 1):
                email = lead_columns("email", f"{name}-{i}@bench.example")
                copy.write_row((list_id, f"First{i}", f"Last{i}", f"Company {i % 997}", *email.values()))
    return list_id


def _engine(database_url: str, crm: str, name: str, env: dict[str, str], rate: tuple[int, float]) -> Any:
    from leads_pipeline.lib.crm.connection import parse_connection
    from leads_pipeline.lib.crm.registry import limiter_for, resource_from_env
    from leads_pipeline.lib.crm.sync import RetrySettings, SyncEngine

    settings: dict[str, Any] = {"crm": crm, "mapping": MAPPINGS[crm], "bulk_threshold": 2_000,
                                "rate_limit": {"requests": rate[0], "per_seconds": rate[1]}}  # fmt: skip
    if crm == "salesforce":
        settings["match_key"] = "id"
    connection = parse_connection(name, settings)
    resource = resource_from_env(connection.crm, env).model_copy(update={"timeout_s": CLIENT_TIMEOUT_S[crm]})
    limiter = limiter_for(connection)
    retry = RetrySettings(attempts=6, backoff_base_s=0.01, backoff_max_s=0.1)
    return SyncEngine(database_url, connection, resource.connector(connection, limiter), limiter, user="bench",
                      retry=retry)  # fmt: skip


def throughput(database_url: str, leads: int, stamp: str) -> dict[str, Any]:
    from leads_pipeline.sandbox.generate import generate_world
    from leads_pipeline.sandbox.http import EmulatorSettings, ProviderSettings, RateLimit
    from leads_pipeline.sandbox.server import Sandbox

    list_id = _make_list(database_url, f"crm-throughput-{stamp}", leads)
    settings = EmulatorSettings(providers={"hubspot": ProviderSettings(rate_limit=RateLimit(*HUBSPOT_BURST))})
    with Sandbox.start(generate_world(5, 20, 1), http_settings=settings) as box:
        engine = _engine(database_url, "hubspot", f"bench-hs-{stamp}", box.env(), HUBSPOT_BURST)
        started = time.perf_counter()
        report = engine.run("push", list_id)
        seconds = time.perf_counter() - started
        assert box.http_app is not None
        limited = sum(1 for r in box.http_app.log.records("hubspot") if r.status == 429)
    delivered = report.created + report.updated  # a batch resent after a lost answer updates what it created
    per_minute = delivered / seconds * 60
    ceiling = HUBSPOT_BURST[0] / HUBSPOT_BURST[1] * 100 * 60
    return {
        "leads": leads,
        "delivered": delivered,
        "failed": report.failed,
        "requests": report.requests,
        "rate_limited_answers": limited,
        "seconds": round(seconds, 1),
        "records_per_minute": round(per_minute),
        "ceiling_records_per_minute": round(ceiling),
        "ratio_to_ceiling": round(per_minute / ceiling, 3),
    }


def reliability(database_url: str, leads: int, stamp: str, tmp: str) -> dict[str, Any]:
    from pathlib import Path

    from leads_pipeline.sandbox.generate import generate_world
    from leads_pipeline.sandbox.http import EmulatorSettings, FaultRates, ProviderSettings
    from leads_pipeline.sandbox.http.tls import serve_tls
    from leads_pipeline.sandbox.server import Sandbox

    faults = FaultRates(rate_limited=0.05, server_error=0.05, unavailable=0.04, timeout=0.03, malformed=0.03)
    settings = EmulatorSettings(seed=11, default=ProviderSettings(faults=faults), timeout_sleep_s=0.8, retry_after_s=0)
    results: dict[str, Any] = {"fault_rate": round(sum(vars(faults).values()), 3)}
    with Sandbox.start(generate_world(5, 20, 1), http_settings=settings) as box:
        assert box.http_app is not None
        front = serve_tls(box.http_app, "salesforce", Path(tmp))
        env = {**box.env(), "SALESFORCE_INSTANCE_URL": front.url, "SALESFORCE_ACCESS_TOKEN": "bench-token",
               "SALESFORCE_CA_BUNDLE": str(front.ca_file)}  # fmt: skip
        try:
            for crm in MAPPINGS:
                name = f"crm-rel-{crm}-{stamp}"
                list_id = _make_list(database_url, name, leads)
                engine = _engine(database_url, crm, name, env, (100_000, 1.0))
                started = time.perf_counter()
                first = engine.run("push", list_id)
                second = engine.run("push", list_id)  # "one later sync": what the first left failing
                seconds = time.perf_counter() - started
                emails = _remote_emails(box.http_app.emulator(crm), crm, name)
                counts = Counter(emails)
                results[crm] = {
                    "attempted": leads,
                    "delivered_first_sync": first.created + first.updated,
                    "delivered_after_later_sync": len(counts),
                    "delivered_ratio": round(len(counts) / leads, 5),
                    "duplicates_created": sum(n - 1 for n in counts.values()),
                    "failed_left": second.failed,
                    "requests": first.requests + second.requests,
                    "seconds": round(seconds, 1),
                }
        finally:
            front.stop()
    return results


def _remote_emails(emulator: Any, crm: str, name: str) -> list[str]:
    """Emails of the CRM records the bench list created (one entry per record, so duplicates show)."""
    stores = list(emulator.stores.values()) if crm == "salesforce" else [emulator.store]
    key = {"hubspot": "email", "salesforce": "Email", "pipedrive": "primary_email", "gohighlevel": "email"}[crm]
    prefix = f"{name}-"
    return [str(r.fields.get(key)) for s in stores for r in s.records.values()
            if str(r.fields.get(key) or "").startswith(prefix)]  # fmt: skip


def crm_benchmark(throughput_leads: int = 100_000, reliability_leads: int = 20_000) -> dict[str, Any]:
    import tempfile

    database_url = _database()
    stamp = time.strftime("%Y%m%d%H%M%S")
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "throughput_hubspot": throughput(database_url, throughput_leads, stamp),
            "reliability": reliability(database_url, reliability_leads, stamp, tmp),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--throughput-leads", type=int, default=100_000)
    parser.add_argument("--reliability-leads", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps(crm_benchmark(args.throughput_leads, args.reliability_leads), indent=2))


if __name__ == "__main__":
    main()
