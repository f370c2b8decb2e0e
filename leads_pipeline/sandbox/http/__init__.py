"""HTTP emulators of the external APIs (Apify, Gemini, ZeroBounce, NeverBounce, Twilio Lookup): one WSGI app.

``build_http_app(world, settings)`` returns the app; mount it with any threaded WSGI server
(``serve.serve_in_thread`` is one). Each provider lives under its prefix, so a client's base URL is
``http://127.0.0.1:PORT/<provider>``: ``/apify`` (apify-client appends ``/v2``), ``/gemini``, ``/zerobounce``,
``/neverbounce``, ``/twilio``. ``http_env(base_url)`` gives the environment that points the project's client
resources at a running app.
"""

from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.gemini import GeminiResource
from leads_pipeline.lib.clients.twilio import TwilioLookupResource
from leads_pipeline.lib.clients.verifiers import NeverBounceResource, ZeroBounceResource
from leads_pipeline.lib.crm.gohighlevel import GoHighLevelResource
from leads_pipeline.lib.crm.hubspot import HubSpotResource
from leads_pipeline.lib.crm.pipedrive import PipedriveResource
from leads_pipeline.sandbox.http.app import HttpEmulator, build_http_app
from leads_pipeline.sandbox.http.common import (
    EmailLists,
    EmulatorSettings,
    Fault,
    FaultRates,
    Latency,
    ProviderSettings,
    RateLimit,
    RequestLog,
    RequestRecord,
)
from leads_pipeline.sandbox.http.gohighlevel import LOCATION as GOHIGHLEVEL_LOCATION


def http_env(base_url: str) -> dict[str, str]:
    """Base URLs and sandbox credentials (any non-empty key works unless the settings restrict keys)."""
    return {
        ApifyResource.URL_ENV_VAR: f"{base_url}/apify",
        ApifyResource.ENV_VAR: "sandbox-apify-token",
        GeminiResource.URL_ENV_VAR: f"{base_url}/gemini",
        GeminiResource.ENV_VAR: "sandbox-gemini-key",
        ZeroBounceResource.URL_ENV_VAR: f"{base_url}/zerobounce",
        ZeroBounceResource.ENV_VAR: "sandbox-zerobounce-key",
        NeverBounceResource.URL_ENV_VAR: f"{base_url}/neverbounce",
        NeverBounceResource.ENV_VAR: "sandbox-neverbounce-key",
        TwilioLookupResource.URL_ENV_VAR: f"{base_url}/twilio",
        TwilioLookupResource.SID_ENV_VAR: "ACsandbox",
        TwilioLookupResource.TOKEN_ENV_VAR: "sandbox-twilio-token",
        HubSpotResource.URL_ENV_VAR: f"{base_url}/hubspot",
        HubSpotResource.ENV_VAR: "sandbox-hubspot-token",
        PipedriveResource.URL_ENV_VAR: f"{base_url}/pipedrive",
        PipedriveResource.ENV_VAR: "sandbox-pipedrive-token",
        GoHighLevelResource.URL_ENV_VAR: f"{base_url}/gohighlevel",
        GoHighLevelResource.ENV_VAR: "sandbox-gohighlevel-token",
        GoHighLevelResource.LOCATION_ENV_VAR: GOHIGHLEVEL_LOCATION,
    }


__all__ = [
    "EmailLists",
    "EmulatorSettings",
    "Fault",
    "FaultRates",
    "HttpEmulator",
    "Latency",
    "ProviderSettings",
    "RateLimit",
    "RequestLog",
    "RequestRecord",
    "build_http_app",
    "http_env",
]
