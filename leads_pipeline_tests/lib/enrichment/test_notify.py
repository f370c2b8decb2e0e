"""What a webhook delivery shows of its URL: webhook tokens live in the query string and in the path."""

from __future__ import annotations

import pytest
import requests

from leads_pipeline.lib.enrichment.notify import _safe_error, safe_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXXSECRET?x=1", "https://hooks.slack.com/services/…?…"),
        ("https://discord.com/api/webhooks/123/tok-en", "https://discord.com/api/…"),
        ("https://hooks.zapier.com/hooks/catch/123/abc/", "https://hooks.zapier.com/hooks/…"),
        ("https://user:pw@example.com:8443/hook#frag", "https://example.com:8443/hook"),
        ("https://example.com/hook/", "https://example.com/hook/"),
        ("https://example.com", "https://example.com"),
        ("http://bob:s3cret@example.com:99999/h/x", "http://example.com:99999/h/…"),
        ("http://bob:s3cret@[::1]:8080/h", "http://[::1]:8080/h"),
    ],
)
def test_a_webhook_url_is_shown_without_its_secrets(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_a_url_requests_cannot_parse_is_recorded_without_its_password() -> None:
    """A port out of range (a ``LEADS_WEBHOOK_URL`` is not checked as ``--notify`` is): requests quoted the whole
    URL, ``user:password@`` included, in the error the delivery records and logs."""
    url = "http://bob:s3cret@example.com:99999/h/x"
    with pytest.raises(requests.RequestException) as raised:
        requests.post(url, timeout=1)
    assert "s3cret" in str(raised.value)
    error = _safe_error(raised.value, url)
    assert error.startswith("InvalidURL: ") and "example.com:99999/h/…" in error and "s3cret" not in error
