"""The CRM resources by CRM name, and how each is bound to its environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from leads_pipeline.lib.crm.base import CrmName
from leads_pipeline.lib.crm.connection import Connection
from leads_pipeline.lib.crm.gohighlevel import GoHighLevelResource
from leads_pipeline.lib.crm.hubspot import HubSpotResource
from leads_pipeline.lib.crm.pipedrive import PipedriveResource
from leads_pipeline.lib.crm.resource import CrmResource
from leads_pipeline.lib.crm.salesforce import SalesforceResource
from leads_pipeline.lib.ratelimit import Pacer, SharedTokenBucket, TokenBucket, bucket_key

RESOURCE_KEYS: dict[CrmName, str] = {
    "hubspot": "crm_hubspot",
    "salesforce": "crm_salesforce",
    "pipedrive": "crm_pipedrive",
    "gohighlevel": "crm_gohighlevel",
}
"""The Dagster resource key of each CRM."""

ENV_FIELDS: dict[CrmName, dict[str, str]] = {
    "hubspot": {"access_token": HubSpotResource.ENV_VAR, "base_url": HubSpotResource.URL_ENV_VAR},
    "salesforce": {
        "access_token": SalesforceResource.ENV_VAR,
        "instance_url": SalesforceResource.URL_ENV_VAR,
        "ca_bundle": SalesforceResource.CA_ENV_VAR,
    },
    "pipedrive": {"api_token": PipedriveResource.ENV_VAR, "base_url": PipedriveResource.URL_ENV_VAR},
    "gohighlevel": {
        "token": GoHighLevelResource.ENV_VAR,
        "location_id": GoHighLevelResource.LOCATION_ENV_VAR,
        "base_url": GoHighLevelResource.URL_ENV_VAR,
    },
}
"""Resource field -> environment variable, per CRM."""

RESOURCE_TYPES: dict[CrmName, type[CrmResource]] = {
    "hubspot": HubSpotResource,
    "salesforce": SalesforceResource,
    "pipedrive": PipedriveResource,
    "gohighlevel": GoHighLevelResource,
}


def resource_from_env(crm: CrmName, env: Mapping[str, str] | None = None) -> CrmResource:
    """The CRM's resource built from the environment now (the CLI's path; Dagster binds ``EnvVar`` instead)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {field: env[name] for field, name in ENV_FIELDS[crm].items() if env.get(name)}
    return RESOURCE_TYPES[crm](**values)


class CrmAccounts(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The four CRM accounts (resource ``crm``); a connection uses the one of its CRM."""

    hubspot: HubSpotResource
    salesforce: SalesforceResource
    pipedrive: PipedriveResource
    gohighlevel: GoHighLevelResource

    def for_connection(self, connection: Connection) -> CrmResource:
        resource: CrmResource = getattr(self, connection.crm)
        return resource


def crm_accounts() -> CrmAccounts:
    """The Definitions' ``crm`` resource: each field bound to ``dg.EnvVar`` when its variable is set.

    Only the variables' presence is read here; Dagster resolves the values at run time. A CRM without its
    variables reports itself as not configured when a connection of it runs.
    """
    accounts: dict[str, CrmResource] = {}
    for crm, fields in ENV_FIELDS.items():
        bound: dict[str, Any] = {field: dg.EnvVar(name) for field, name in fields.items() if os.environ.get(name)}
        accounts[crm] = RESOURCE_TYPES[crm](**bound)
    return CrmAccounts(**accounts)


def limiter_for(connection: Connection, shared: tuple[str, CrmResource] | None = None) -> Pacer:
    """Pacing just under the connection's limit: the CRMs count requests in a rolling window, so the bucket's
    burst plus what it refills in one window stays one request under the limit. A few tokens of burst (not one)
    keep the rate when a thread wakes late: with a single token, every late wake-up is time the bucket loses.

    With ``shared`` (the database URL and the connection's CRM account) the bucket is the account's, in the
    database: every run and connection using that account paces together, as the CRM counts them (two syncs at
    once each sent the whole limit)."""
    limit = connection.rate_limit
    burst = max(1, limit.requests // 50)
    requests = max(limit.requests - 1 - burst, 1)
    if shared is None:
        return TokenBucket(requests, limit.per_seconds, burst=burst)
    database_url, account = shared
    key = bucket_key(connection.crm, account.account())
    return SharedTokenBucket(database_url, key, requests, limit.per_seconds, burst=burst)
