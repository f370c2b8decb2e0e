"""The shared requests plumbing: redaction, Retry-After parsing, backoff and the session's retry loop."""

from __future__ import annotations

import itertools
import time
from email.utils import formatdate

import pytest
import requests

from leads_pipeline.lib.clients.http import RetryingSession, RetryPolicy, parse_retry_after, redact
from leads_pipeline.lib.enrichment.pacing import pacer
from leads_pipeline_tests.lib.enrichment.test_pacing import FakeTime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET https://api.zerobounce.net/v2/validate?api_key=abc123&email=a@b.c",
            "GET https://api.zerobounce.net/v2/validate?api_key=***&email=a@b.c",
        ),
        ("/v4/single/check?email=x&key=nb_live_1", "/v4/single/check?email=x&key=***"),
        ("https://api.apify.com/v2/acts?token=apify_api_XYZ", "https://api.apify.com/v2/acts?token=***"),
        ("Authorization: Bearer apify_api_XYZ123", "Authorization: ***"),
        ("{'x-goog-api-key': 'AIzaSyD-secret'}", "{'x-goog-api-key': '***'}"),
        ('{"api_key": "zb-123", "email": "a@b.c"}', '{"api_key": "***", "email": "a@b.c"}'),
        ("sent Basic QUMxMjM6dG9rZW4= to twilio", "sent Basic *** to twilio"),
        ("a keyboard is not a key=", "a keyboard is not a key="),
        ("/v1/persons?api_token=pd_live_1&limit=5", "/v1/persons?api_token=***&limit=5"),  # Pipedrive's query auth
        ("POST /oauth?client_secret=cs_1&refresh_token=rt_1", "POST /oauth?client_secret=***&refresh_token=***"),
        ("https://hooks:s3cret@example.com/x failed", "https://hooks:***@example.com/x failed"),
        ("mailto:someone@example.com, a:b", "mailto:someone@example.com, a:b"),
    ],
)
def test_redact_removes_credentials(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_removes_known_secret_values_anywhere() -> None:
    assert redact("Invalid API key 'nb-secret-1'", "nb-secret-1", None) == "Invalid API key '***'"


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_ten_seconds = parse_retry_after(formatdate(time.time() + 10, usegmt=True))
    assert in_ten_seconds is not None and 8 <= in_ten_seconds <= 10


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=4.0, retry_after_max_s=30.0)
    for retry, low, high in [(0, 0.5, 1.0), (1, 1.0, 2.0), (5, 2.0, 4.0)]:
        delay = policy.delay(retry)
        assert delay is not None and low <= delay <= high
    hinted = policy.delay(0, "7")
    assert hinted is not None and 7.0 <= hinted <= 8.0
    assert policy.delay(0, "3600") is None  # longer than we wait: give up and report it


class _Scripted(requests.adapters.BaseAdapter):
    """An adapter that answers from a script of statuses and exceptions: the loop without a server."""

    def __init__(self, script: list[int | Exception], headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.script = script
        self.headers = headers or {}
        self.calls = 0

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        step = self.script[self.calls]
        self.calls += 1
        if isinstance(step, Exception):
            raise step
        response = requests.Response()
        response.status_code = step
        response.headers.update(self.headers)
        response.request = request
        response._content = b"{}"
        return response

    def close(self) -> None:
        pass


def session_with(adapter: _Scripted, max_retries: int = 3) -> tuple[RetryingSession, list[float]]:
    sleeps: list[float] = []
    session = RetryingSession(RetryPolicy(max_retries=max_retries, backoff_base_s=0.1), 1.0, sleep=sleeps.append)
    session.mount("http://", adapter)
    return session, sleeps


def test_session_retries_statuses_and_errors_until_success() -> None:
    adapter = _Scripted([503, requests.ConnectTimeout("slow"), requests.ConnectionError("refused"), 200])
    session, sleeps = session_with(adapter)
    assert session.get("http://provider.test/x").status_code == 200
    assert adapter.calls == 4
    assert len(sleeps) == 3


def test_session_returns_the_last_answer_when_retries_run_out() -> None:
    session, sleeps = session_with(_Scripted([429, 429, 429]), max_retries=2)
    assert session.get("http://provider.test/x").status_code == 429
    assert len(sleeps) == 2


def test_session_raises_the_last_error_when_retries_run_out() -> None:
    session, _ = session_with(_Scripted([requests.ReadTimeout("1"), requests.ReadTimeout("2")]), max_retries=1)
    with pytest.raises(requests.ReadTimeout, match="2"):
        session.get("http://provider.test/x")


def test_session_sleeps_what_retry_after_asks() -> None:
    session, sleeps = session_with(_Scripted([429, 200], headers={"Retry-After": "2"}))
    session.get("http://provider.test/x")
    assert 2.0 <= sleeps[0] <= 2.1


def test_session_does_not_retry_client_errors() -> None:
    adapter = _Scripted([404, 200])
    session, _ = session_with(adapter)
    assert session.get("http://provider.test/x").status_code == 404
    assert adapter.calls == 1


class _Timed(_Scripted):
    """A scripted adapter noting the (fake) time of each send."""

    def __init__(self, fake: FakeTime, script: list[int | Exception], headers: dict[str, str] | None = None) -> None:
        super().__init__(script, headers)
        self.fake = fake
        self.sent: list[float] = []

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        self.sent.append(self.fake.now)
        return super().send(request, **kwargs)


def test_a_paced_session_spaces_every_attempt_retries_too() -> None:
    fake = FakeTime()
    adapter = _Timed(fake, [200, 503, 200, requests.ConnectionError("refused"), 200, 200])
    session, _ = session_with(adapter)
    session.pacer = pacer(10, clock=fake.clock, sleep=fake.sleep)
    for _ in range(4):
        assert session.get("http://provider.test/x").status_code == 200
    gaps = [b - a for a, b in itertools.pairwise(adapter.sent)]
    assert len(adapter.sent) == 6 and gaps[1:] == pytest.approx([0.1] * 4)  # every attempt a slot (after the burst)


def test_a_429_pauses_the_pacer_for_every_caller_of_the_key() -> None:
    fake = FakeTime()
    adapter = _Timed(fake, [429, 200, 200], headers={"Retry-After": "2"})
    session, _ = session_with(adapter)
    bucket = pacer(10, clock=fake.clock, sleep=fake.sleep)
    session.pacer = bucket
    session.get("http://provider.test/x")
    assert adapter.sent[1] >= 2.0  # the retry waited out the pause (the session's own sleep is not the clock here)
    bucket.acquire()
    assert fake.now > 2.0  # and so does whoever comes next (unpaused: at 0.185)
