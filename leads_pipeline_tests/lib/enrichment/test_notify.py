"""What a webhook delivery shows of its URL: webhook tokens live in the query string and in the path."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.enrichment.notify import safe_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXXSECRET?x=1", "https://hooks.slack.com/services/…?…"),
        ("https://discord.com/api/webhooks/123/tok-en", "https://discord.com/api/…"),
        ("https://hooks.zapier.com/hooks/catch/123/abc/", "https://hooks.zapier.com/hooks/…"),
        ("https://user:pw@example.com:8443/hook#frag", "https://example.com:8443/hook"),
        ("https://example.com/hook/", "https://example.com/hook/"),
        ("https://example.com", "https://example.com"),
    ],
)
def test_a_webhook_url_is_shown_without_its_secrets(url: str, shown: str) -> None:
    assert safe_url(url) == shown
