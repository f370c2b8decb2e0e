"""CRM test fixtures: the Salesforce emulator behind https (simple-salesforce speaks nothing else)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leads_pipeline.sandbox.http.tls import serve_tls
from leads_pipeline.sandbox.server import Sandbox


@pytest.fixture(scope="session")
def salesforce_env(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Settings pointing SalesforceResource at the session sandbox's Salesforce emulator over TLS."""
    assert sandbox.http_app is not None
    front = serve_tls(sandbox.http_app, "salesforce", tmp_path_factory.mktemp("tls"))
    yield front.salesforce_env()
    front.stop()
