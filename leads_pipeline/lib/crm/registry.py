"""The CRM resources by CRM name, and how each is bound to its environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from leads_pipeline.lib.crm.base import CrmName
from leads_pipeline.lib.crm.connection import Connection
from leads_pipeline.lib.crm.gohighlevel import GoHighLevelResource
from leads_pipeline.lib.crm.hubspot import HubSpotResource
from leads_pipeline.lib.crm.pipedrive import PipedriveResource
from leads_pipeline.lib.crm.ratelimit import TokenBucket
from leads_pipeline.lib.crm.resource import CrmResource
from leads_pipeline.lib.crm.salesforce import SalesforceResource

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


def limiter_for(connection: Connection) -> TokenBucket:
    return TokenBucket(connection.rate_limit.requests, connection.rate_limit.per_seconds)
