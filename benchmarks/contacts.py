"""Contact discovery measured against the sandbox's truth: email, phone and LinkedIn discovery rates and precision.

Generates a world (500 companies, 5,000 people by default), writes its people as leads with 60% of emails, 70%
of phones and 80% of LinkedIn URLs removed, imports them, runs ``email_contacts``, ``phone_contacts`` and
``linkedin_profiles`` through Dagster against a running sandbox (default latency), and compares what they
stored with the world. Costs are in each provider's unit (USD for Apify and Twilio, credits for the
verifiers). The email stage runs twice: patterns and SMTP only (what discovery achieves with no paid source),
then with the paid sources as fallbacks (ZeroBounce where a probe gets no answer, the people-search actor where
guessing fails); each in a database of its own, so neither learns from the other. Phone and LinkedIn run on the
second.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
MISSING = {"email": 0.6, "phone": 0.7, "linkedin": 0.8}


def _materialize(asset: Any, batch_id: str, resources: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    import dagster as dg

    from benchmarks.dagster_instance import throwaway_instance

    name = asset.key.to_user_string()
    with throwaway_instance(batch_id) as instance:
        result = dg.materialize(
            [asset],
            partition_key=batch_id,
            instance=instance,
            resources=resources,
            run_config={
                "ops": {name: {"config": config}},
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            },
        )
    [materialization] = result.asset_materializations_for_node(name)
    return {key: value.value for key, value in materialization.metadata.items()}


SANDBOX_RATE = 1000.0
"""Requests a second per provider key: the sandbox limits none, so the stages pace through their buckets at a rate
that never holds a call back, and the figures measure discovery, not the providers' default limits."""


def _resources(sandbox: Any, database_url: str) -> dict[str, Any]:
    from leads_pipeline.defs.resources import LeadsDatabase
    from leads_pipeline.lib.clients.apify import ApifyResource
    from leads_pipeline.lib.clients.mail import MailCheckResource
    from leads_pipeline.lib.clients.twilio import TwilioLookupResource
    from leads_pipeline.lib.clients.verifiers import NeverBounceResource, ZeroBounceResource

    env = sandbox.env()
    return {
        "database": LeadsDatabase(database_url=database_url),
        "mail": MailCheckResource(
            dns_server=env["LEADS_DNS_SERVER"],
            smtp_port=int(env["LEADS_SMTP_PORT"]),
            smtp_routes=env["LEADS_SMTP_ROUTES"],
            timeout_s=5.0,
        ),
        "zerobounce": ZeroBounceResource(
            api_key=env["ZEROBOUNCE_API_KEY"], base_url=env["ZEROBOUNCE_BASE_URL"], requests_per_second=SANDBOX_RATE
        ),
        "neverbounce": NeverBounceResource(),
        "apify": ApifyResource(
            token=env["APIFY_TOKEN"], api_url=env["APIFY_API_URL"], requests_per_second=SANDBOX_RATE
        ),
        "twilio": TwilioLookupResource(
            account_sid=env["TWILIO_ACCOUNT_SID"],
            auth_token=env["TWILIO_AUTH_TOKEN"],
            base_url=env["TWILIO_LOOKUP_BASE_URL"],
            requests_per_second=SANDBOX_RATE,
        ),
    }


def _import(database_url: str, csv_path: Path, list_name: str, batch_id: str) -> dict[int, dict[str, Any]]:
    """Import the file as a new list; lead id -> truth row (leads are created in file order)."""
    from leads_pipeline.lib.importer import ImportOptions, run_import
    from leads_pipeline.lib.store.db import connect

    run_import(
        database_url,
        batch_id=batch_id,
        path=csv_path,
        list_name=list_name,
        options=ImportOptions(create_list=True),
        user="bench",
    )
    with connect(database_url) as conn:
        ids = [
            r["id"]
            for r in conn.execute(
                "SELECT l.id FROM leads l JOIN imports i ON i.id = l.created_by_import WHERE i.batch_id = %s"
                " ORDER BY l.id",
                (batch_id,),
            )
        ]
    truth = json.loads(csv_path.with_suffix(".truth.json").read_text())["rows"]
    return dict(zip(ids, truth, strict=True))


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _email_figures(database_url: str, truth: dict[int, dict[str, Any]], world: Any) -> dict[str, Any]:
    from leads_pipeline.lib.store.db import connect

    with connect(database_url) as conn:
        facts = {
            r["lead_id"]: r
            for r in conn.execute(
                "SELECT DISTINCT ON (lead_id) lead_id, value, source, details FROM lead_facts"
                " WHERE field = 'email' AND lead_id = ANY(%s) ORDER BY lead_id, id DESC",
                (list(truth),),
            )
        }
    blanked = [i for i, row in truth.items() if "email" in row["blanked"]]
    valid = [i for i in blanked if i in facts and facts[i]["details"]["status"] == "valid"]
    risky = [i for i in blanked if i in facts and facts[i]["value"] and facts[i]["details"]["status"] != "valid"]
    correct = [i for i in valid + risky if facts[i]["value"] == truth[i]["true"]["email"]]
    on_catch_all = [
        i
        for i in risky
        if (c := world.company(truth[i]["true"]["company_domain"])) and c.mx_behaviour in ("catch_all", "accepts")
    ]
    return {
        "blanked": len(blanked),
        "found_valid": len(valid),
        "found_risky": len(risky),
        "discovery_rate_valid": _rate(len(valid), len(blanked)),
        "discovery_rate_any": _rate(len(valid) + len(risky), len(blanked)),
        "precision_valid": _rate(sum(facts[i]["value"] == truth[i]["true"]["email"] for i in valid), len(valid)),
        "precision_risky": _rate(sum(facts[i]["value"] == truth[i]["true"]["email"] for i in risky), len(risky)),
        "precision_any": _rate(len(correct), len(valid) + len(risky)),
        "catch_all_risky": len(on_catch_all),
        "catch_all_precision": _rate(
            sum(facts[i]["value"] == truth[i]["true"]["email"] for i in on_catch_all), len(on_catch_all)
        ),
        "by_source": {
            s: sum(1 for i in valid + risky if facts[i]["source"] == s)
            for s in {facts[i]["source"] for i in valid + risky}
        },
    }


def _column_figures(database_url: str, truth: dict[int, dict[str, Any]], world: Any, field: str) -> dict[str, Any]:
    from leads_pipeline.lib.store.db import connect

    with connect(database_url) as conn:
        leads = {
            r["id"]: r
            for r in conn.execute(
                "SELECT id, phone, mobile_phone, linkedin_url FROM leads WHERE id = ANY(%s)", (list(truth),)
            )
        }
    people = {p.id: p for p in world.people}
    blanked = [i for i, row in truth.items() if field in row["blanked"]]
    if field == "phone":
        found = [i for i in blanked if leads[i]["phone"]]
        right = [i for i in found if leads[i]["phone"] in {p.number for p in people[truth[i]["person_id"]].phones}]
        mobiles = [i for i, lead in leads.items() if lead["mobile_phone"]]
        mobile_right = [
            i
            for i in mobiles
            if {p.number: p.line_type for p in people[truth[i]["person_id"]].phones}.get(leads[i]["mobile_phone"])
            == "mobile"
        ]
        return {
            "blanked": len(blanked),
            "found": len(found),
            "discovery_rate": _rate(len(found), len(blanked)),
            "precision": _rate(len(right), len(found)),
            "mobiles": len(mobiles),
            "mobile_precision": _rate(len(mobile_right), len(mobiles)),
        }
    has_profile = [i for i in blanked if truth[i]["true"]["linkedin"]]
    found = [i for i in has_profile if leads[i]["linkedin_url"]]
    right = [i for i in found if leads[i]["linkedin_url"] == truth[i]["true"]["linkedin"]]
    return {
        "blanked_with_profile": len(has_profile),
        "found": len(found),
        "recall": _rate(len(right), len(has_profile)),
        "precision": _rate(len(right), len(found)),
    }


def _fresh_database(server_url: str, name: str) -> str:
    """A new empty database on the same server: learned patterns and caches of an earlier run (or of a real
    account) would flatter the figures."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from leads_pipeline.lib.runtime import plain_postgres_url

    with psycopg.connect(plain_postgres_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def contacts_benchmark(companies: int = 500, people: int = 5000) -> dict[str, Any]:
    from leads_pipeline.defs.contacts.assets import email_contacts, linkedin_profiles, phone_contacts
    from leads_pipeline.lib.runtime import prepare_environment
    from leads_pipeline.lib.store.migrations import apply_migrations
    from leads_pipeline.sandbox.generate import generate_world, write_leads_csv
    from leads_pipeline.sandbox.server import Sandbox

    os.environ.setdefault("LEADS_HOME", str(OUT / "home"))
    env = prepare_environment()
    world = generate_world(companies, people, seed=2026)
    stamp = time.strftime("%Y%m%d%H%M%S")
    csv_path = OUT / f"contacts_{stamp}.csv"
    write_leads_csv(world, csv_path, csv_path.with_suffix(".truth.json"), MISSING, seed=5)
    report: dict[str, Any] = {"companies": companies, "people": people, "missing": MISSING}
    with Sandbox.start(world) as sandbox:
        runs: dict[str, tuple[str, dict[str, Any]]] = {
            "email_patterns_only": ("patterns", {"people_search": False, "verifier": "none"}),
            "email_with_people_search": ("people", {"people_search": True}),
        }
        for name, (suffix, config) in runs.items():
            database_url = _fresh_database(env.database_url, f"bench_contacts_{suffix}")  # nothing learned before
            apply_migrations(database_url)
            resources = _resources(sandbox, database_url)
            batch_id = f"bench-contacts-{stamp}-{suffix}"
            truth = _import(database_url, csv_path, f"bench-contacts-{stamp}-{suffix}", batch_id)
            started = time.perf_counter()
            meta = _materialize(email_contacts, batch_id, resources, config)
            seconds = time.perf_counter() - started
            report[name] = {
                **_email_figures(database_url, truth, world),
                "seconds": round(seconds, 1),
                "leads_per_minute": round(len(truth) / seconds * 60),
                "credits_used": meta["credits_this_source"],
            }
        for name, asset, field in (("phone", phone_contacts, "phone"), ("linkedin", linkedin_profiles, "linkedin")):
            started = time.perf_counter()
            meta = _materialize(asset, batch_id, resources, {"download_photos": False} if field == "linkedin" else {})
            seconds = time.perf_counter() - started
            report[name] = {
                **_column_figures(database_url, truth, world, field),
                "seconds": round(seconds, 1),
                "leads_per_minute": round(len(truth) / seconds * 60),
                "credits_used": meta["credits_this_source"],
            }
    return report


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    report = contacts_benchmark()
    (OUT / "contacts.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
