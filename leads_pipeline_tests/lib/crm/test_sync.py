"""The sync engine against the sandbox emulators: the field list a sync starts with is retried like record calls."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.crm.registry import limiter_for, resource_from_env
from leads_pipeline.lib.crm.sync import RetrySettings, crm_fields
from leads_pipeline.lib.errors import TransientError
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline_tests.lib.crm.helpers import connection

pytestmark = pytest.mark.integration
CRMS = ["hubspot", "salesforce", "pipedrive", "gohighlevel"]
FAST = RetrySettings(attempts=3, backoff_base_s=0.01, backoff_max_s=0.05)


@pytest.mark.parametrize("crm", CRMS)
def test_the_field_list_is_retried_after_a_cut_body_or_a_500_then_fails_clearly(
    crm: str, sandbox: Sandbox, salesforce_env: dict[str, str]
) -> None:
    conn_ = connection(crm, f"{crm}-fields")
    limiter = limiter_for(conn_)
    connector = resource_from_env(conn_.crm, {**sandbox.env(), **salesforce_env}).connector(conn_, limiter)
    assert sandbox.http_app is not None
    sandbox.http_app.inject(crm, "malformed", "500")
    fields = crm_fields(conn_, connector, limiter, FAST)
    assert {m.remote for m in conn_.mapping} <= {f.name for f in fields} | {f.label for f in fields}
    sandbox.http_app.inject(crm, "500", "malformed", "503")
    with pytest.raises(TransientError, match=rf"^{crm}-fields: could not read the {crm} field list in 3 attempts"):
        crm_fields(conn_, connector, limiter, FAST)
