"""Resources: the project's PostgreSQL and one resource per external provider.

The providers' modules import their client libraries (google-genai, apify-client, the CRMs' SDKs: ~1 s together),
so they are imported where their resources are built, not here: a run that needs only the database (an import, a
scoring) starts without them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.migrations import prepare_database


class LeadsDatabase(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The leads database. Migrations are applied before a run uses it (idempotent, serialized by a lock), and its
    keys checked against the database's (a daemon on another host with keys of its own)."""

    database_url: str = Field(description="postgresql:// URL of the leads database (DATABASE_URL).")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        prepare_database(self.database_url)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A connection in one transaction, committed at the end of the block."""
        with connect(self.database_url) as conn:
            yield conn


def database_resources() -> dict[str, Any]:
    """The binding of a run that uses no provider: the database alone."""
    return {"database": LeadsDatabase(database_url=dg.EnvVar("DATABASE_URL"))}


def _from_env(**fields: str) -> dict[str, Any]:
    """``EnvVar`` bindings for the fields whose variable is set.

    Only the variable's presence is looked at here; its value is resolved by Dagster at run time and never
    enters the Definitions. An unset variable leaves the field empty, so the provider reports itself as not
    configured instead of failing every run (Dagster refuses to start a run with an unset ``EnvVar``).
    """
    return {field: dg.EnvVar(name) for field, name in fields.items() if os.environ.get(name)}


def _rate_from_env(name: str) -> dict[str, Any]:
    """The ``requests_per_second`` a ``*_REQUESTS_PER_SECOND`` variable sets (``configured_rate``: not a secret,
    read here), or nothing for the default."""
    from leads_pipeline.lib.enrichment.pacing import configured_rate

    rate = configured_rate(name)
    return {} if rate is None else {"requests_per_second": rate}


def provider_resources() -> dict[str, dg.ConfigurableResource]:  # type: ignore[type-arg]
    """One resource per external provider, pointed at the real service unless its URL variable says otherwise."""
    from leads_pipeline.lib.clients.apify import ApifyResource
    from leads_pipeline.lib.clients.gemini import GeminiResource
    from leads_pipeline.lib.clients.mail import mail_check_from_env
    from leads_pipeline.lib.clients.twilio import TwilioLookupResource
    from leads_pipeline.lib.clients.verifiers import NeverBounceResource, ZeroBounceResource

    return {
        "apify": ApifyResource(
            **_from_env(token=ApifyResource.ENV_VAR, api_url=ApifyResource.URL_ENV_VAR),
            **_rate_from_env(ApifyResource.RATE_ENV_VAR),
        ),
        "gemini": GeminiResource(**_from_env(api_key=GeminiResource.ENV_VAR, base_url=GeminiResource.URL_ENV_VAR)),
        "zerobounce": ZeroBounceResource(
            **_from_env(api_key=ZeroBounceResource.ENV_VAR, base_url=ZeroBounceResource.URL_ENV_VAR),
            **_rate_from_env(ZeroBounceResource.RATE_ENV_VAR),
        ),
        "neverbounce": NeverBounceResource(
            **_from_env(api_key=NeverBounceResource.ENV_VAR, base_url=NeverBounceResource.URL_ENV_VAR),
            **_rate_from_env(NeverBounceResource.RATE_ENV_VAR),
        ),
        "twilio": TwilioLookupResource(
            **_from_env(
                account_sid=TwilioLookupResource.SID_ENV_VAR,
                auth_token=TwilioLookupResource.TOKEN_ENV_VAR,
                base_url=TwilioLookupResource.URL_ENV_VAR,
            ),
            **_rate_from_env(TwilioLookupResource.RATE_ENV_VAR),
        ),
        "mail": mail_check_from_env(),
    }


def default_resources() -> dict[str, Any]:
    """Resource bindings for the Definitions: secrets and endpoints come from the environment at run time."""
    from leads_pipeline.lib.crm.registry import crm_accounts

    return {
        **database_resources(),
        **provider_resources(),
        "crm": crm_accounts(),
    }
