"""ZeroBounce and NeverBounce resources against their emulators over the wire."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from leads_pipeline.lib.clients.http import MalformedResponseError
from leads_pipeline.lib.clients.twilio import TwilioLookupResource
from leads_pipeline.lib.clients.verifiers import NeverBounceResource, ZeroBounceResource
from leads_pipeline.lib.errors import ConfigurationError, TransientError
from leads_pipeline.lib.ratelimit import SharedTokenBucket, bucket_key
from leads_pipeline.lib.store.db import connect
from leads_pipeline.sandbox.http import (
    EmailLists,
    EmulatorSettings,
    HttpEmulator,
    ProviderSettings,
)
from leads_pipeline.sandbox.world import Company, MxBehaviour, Person, World

ZB_KEY = "zb-secret-key-0001"
NB_KEY = "nb-secret-key-0002"


def company(domain: str, behaviour: MxBehaviour) -> Company:
    mx = () if behaviour == "no_mx" else (f"mx1.{domain}",)
    return Company(name=domain.split(".")[0].title(), domain=domain, mx_hosts=mx, mx_behaviour=behaviour)


def person(pid: str, email: str) -> Person:
    local, _, domain = email.partition("@")
    return Person(id=pid, first_name=local.title(), last_name="Tester", company_domain=domain, email=email)


WORLD = World(
    companies=(
        company("strict.io", "strict"),
        company("catchy.com", "catch_all"),
        company("open.org", "accepts"),
        company("nomx.net", "no_mx"),
        company("slow.biz", "timeout"),
        company("grey.co", "greylist"),
    ),
    people=(
        person("p1", "jane@strict.io"),
        person("p2", "carl@catchy.com"),
        person("p3", "olga@open.org"),
        person("p4", "gina@grey.co"),
        person("p5", "fred.home@gmail.com"),
    ),
)
LISTS = EmailLists(
    free_domains=frozenset({"gmail.com"}),
    disposable_domains=frozenset({"mailinator.com"}),
    role_local_parts=frozenset({"info"}),
)
SETTINGS = EmulatorSettings(
    seed=5,
    timeout_sleep_s=1.0,
    email_lists=LISTS,
    providers={
        "zerobounce": ProviderSettings(api_keys=frozenset({ZB_KEY})),
        "neverbounce": ProviderSettings(api_keys=frozenset({NB_KEY})),
    },
)


@pytest.fixture
def zerobounce(emulators: tuple[HttpEmulator, str]) -> ZeroBounceResource:
    return ZeroBounceResource(
        api_key=ZB_KEY,
        base_url=f"{emulators[1]}/zerobounce",
        timeout_s=0.3,
        max_retries=2,
        backoff_base_s=0.01,
    )


@pytest.fixture
def neverbounce(emulators: tuple[HttpEmulator, str]) -> NeverBounceResource:
    return NeverBounceResource(
        api_key=NB_KEY,
        base_url=f"{emulators[1]}/neverbounce",
        timeout_s=0.3,
        max_retries=2,
        backoff_base_s=0.01,
    )


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Stalled emulator threads log only once they wake up: wait, so that later tests see a clean log."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("email", "status", "sub_status"),
    [
        ("jane@strict.io", "valid", None),
        ("nobody@strict.io", "invalid", "mailbox_not_found"),
        ("carl@catchy.com", "catch_all", None),
        ("info@catchy.com", "do_not_mail", "role_based_catch_all"),
        ("olga@open.org", "valid", None),
        ("someone@open.org", "catch_all", None),
        ("x@nomx.net", "invalid", "no_dns_entries"),
        ("x@unheard-of.example", "invalid", "no_dns_entries"),
        ("x@slow.biz", "unknown", "mail_server_did_not_respond"),
        ("x@mailinator.com", "disposable", "disposable"),
        ("not-an-address", "invalid", "failed_syntax_check"),
        ("fred.home@gmail.com", "valid", None),
        ("nobody.home@gmail.com", "invalid", "mailbox_not_found"),
    ],
)
def test_zerobounce_verdicts_follow_the_world(
    zerobounce: ZeroBounceResource, email: str, status: str, sub_status: str | None
) -> None:
    verdict = zerobounce.verify(email)
    assert (verdict.status, verdict.sub_status, verdict.provider) == (status, sub_status, "zerobounce")
    assert verdict.credits == (0 if status == "unknown" else 1)


def test_zerobounce_reports_free_mail_and_mx_like_the_api(zerobounce: ZeroBounceResource) -> None:
    assert zerobounce.verify("fred.home@gmail.com").raw["free_email"] is True
    no_mx = zerobounce.verify("x@nomx.net").raw
    assert (no_mx["mx_found"], no_mx["mx_record"]) == ("false", None)
    assert zerobounce.verify("jane@strict.io").raw["mx_record"] == "mx1.strict.io"


def test_greylisted_address_is_unknown_first_then_checked(zerobounce: ZeroBounceResource) -> None:
    assert zerobounce.verify("gina@grey.co").sub_status == "greylisted"
    assert zerobounce.verify("gina@grey.co").status == "valid"


def test_zerobounce_credits_go_down_by_the_reported_cost(zerobounce: ZeroBounceResource) -> None:
    before = zerobounce.credits_remaining()
    costs = [zerobounce.verify(e).credits for e in ("jane@strict.io", "x@slow.biz", "nobody@strict.io")]
    assert zerobounce.credits_remaining() == before - sum(costs) == before - 2


@pytest.mark.parametrize(
    ("email", "status", "flag"),
    [
        ("jane@strict.io", "valid", "smtp_connectable"),
        ("nobody@strict.io", "invalid", "has_dns_mx"),
        ("carl@catchy.com", "catch_all", "accepts_all"),
        ("x@nomx.net", "invalid", "has_dns"),
        ("x@unheard-of.example", "invalid", "bad_dns"),
        ("x@mailinator.com", "disposable", "disposable_email"),
        ("x@slow.biz", "unknown", "connect_fails"),
        ("fred.home@gmail.com", "valid", "free_email_host"),
        ("info@catchy.com", "catch_all", "role_account"),
    ],
)
def test_neverbounce_results_and_flags(neverbounce: NeverBounceResource, email: str, status: str, flag: str) -> None:
    verdict = neverbounce.verify(email)
    assert (verdict.status, verdict.provider, verdict.credits) == (status, "neverbounce", 1)
    assert flag in verdict.raw["flags"]


def test_429_is_retried_after_the_retry_after_delay(app: HttpEmulator, zerobounce: ZeroBounceResource) -> None:
    app.inject("zerobounce", "429")
    started = time.monotonic()
    assert zerobounce.verify("jane@strict.io").status == "valid"
    assert time.monotonic() - started >= 1.0  # the emulator said Retry-After: 1
    assert [r.status for r in app.log.records("zerobounce")] == [429, 200]


def test_5xx_is_retried(app: HttpEmulator, zerobounce: ZeroBounceResource) -> None:
    app.inject("zerobounce", "500", "503")
    assert zerobounce.verify("jane@strict.io").status == "valid"
    assert [r.status for r in app.log.records("zerobounce")] == [500, 503, 200]


def test_5xx_left_after_the_retries_is_transient(app: HttpEmulator, zerobounce: ZeroBounceResource) -> None:
    app.inject("zerobounce", "503", "503", "503")
    with pytest.raises(TransientError, match=r"ZeroBounce failed on its side \(after 3 attempts\)") as caught:
        zerobounce.verify("jane@strict.io")
    assert ZB_KEY not in str(caught.value)


def test_timeout_is_transient_and_keeps_the_key_out(app: HttpEmulator, zerobounce: ZeroBounceResource) -> None:
    app.inject("zerobounce", "timeout", "timeout", "timeout")
    with pytest.raises(TransientError, match=r"ZeroBounce did not answer within 0\.3 s") as caught:
        zerobounce.verify("jane@strict.io")
    assert ZB_KEY not in str(caught.value)
    wait_for(lambda: len(app.log.records("zerobounce")) == 3)


def test_unreachable_service_is_transient_with_the_url_redacted() -> None:
    with socket.socket() as probe:  # a port that nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    resource = ZeroBounceResource(
        api_key=ZB_KEY, base_url=f"http://127.0.0.1:{port}", max_retries=1, backoff_base_s=0.01
    )
    with pytest.raises(TransientError, match="could not connect to ZeroBounce") as caught:
        resource.verify("jane@strict.io")
    assert ZB_KEY not in str(caught.value)
    assert "api_key=***" in str(caught.value)


def test_malformed_body_is_a_clear_error(app: HttpEmulator, zerobounce: ZeroBounceResource) -> None:
    app.inject("zerobounce", "malformed")
    with pytest.raises(MalformedResponseError, match="ZeroBounce answered HTTP 200 with a body that is not valid JSON"):
        zerobounce.verify("jane@strict.io")


def test_not_configured_names_the_environment_variable() -> None:
    for resource in (ZeroBounceResource(), NeverBounceResource()):
        assert not resource.is_configured
        with pytest.raises(ConfigurationError, match=f"set the {resource.ENV_VAR} environment variable"):
            resource.verify("jane@strict.io")


def test_rejected_key_is_a_configuration_error(zerobounce: ZeroBounceResource) -> None:
    bad = zerobounce.model_copy(update={"api_key": "zb-wrong-key-9999"})
    with pytest.raises(ConfigurationError, match="ZEROBOUNCE_API_KEY"):
        bad.verify("jane@strict.io")
    with pytest.raises(ConfigurationError, match="rejected the API key"):
        bad.credits_remaining()


def test_neverbounce_echoed_key_is_redacted(neverbounce: NeverBounceResource) -> None:
    bad = neverbounce.model_copy(update={"api_key": "nb-wrong-key-9999"})
    with pytest.raises(ConfigurationError, match="NEVERBOUNCE_API_KEY") as caught:
        bad.verify("jane@strict.io")
    assert "nb-wrong-key-9999" not in str(caught.value)  # NeverBounce quotes the rejected key back
    assert "Invalid API key '***'" in str(caught.value)


def test_neverbounce_throttling_in_a_200_is_retried(app: HttpEmulator, neverbounce: NeverBounceResource) -> None:
    app.inject("neverbounce", "429", "503")
    assert neverbounce.verify("jane@strict.io").status == "valid"
    assert [(r.status, r.fault) for r in app.log.records("neverbounce")] == [
        (200, "429"),
        (503, "503"),
        (200, None),
    ]


def test_neverbounce_persistent_throttling_is_transient(app: HttpEmulator, neverbounce: NeverBounceResource) -> None:
    app.inject("neverbounce", "429", "429", "429")
    with pytest.raises(TransientError, match="throttle_triggered"):
        neverbounce.verify("jane@strict.io")


@pytest.mark.parametrize("client", ["resource", "command"])
def test_neverbounce_throttling_pauses_the_key_for_every_caller(
    app: HttpEmulator, emulators: tuple[HttpEmulator, str], database_url: str, client: str
) -> None:
    """NeverBounce's throttle_triggered (HTTP 200) was retried by the caller it refused while the other workers and
    runs under the key went on sending into the throttle, where a 429's Retry-After pauses them all. It pauses the
    key's bucket now for the wait before the retry, in a stage's resource and in ``leads verify``'s client alike."""
    from leads_pipeline.lib.clients.http import RetryPolicy, retrying_session
    from leads_pipeline.lib.clients.verifier_clients import NeverBounceClient, neverbounce_busy

    url = f"{emulators[1]}/neverbounce"
    verifier: NeverBounceResource | NeverBounceClient = NeverBounceResource(
        api_key=NB_KEY, base_url=url, backoff_base_s=0.4, requests_per_second=1000.0
    )
    if client == "command":  # as verifier_clients_of_environment makes it
        from leads_pipeline.lib.clients.verifier_clients import neverbounce_throttled

        session = retrying_session(
            policy=RetryPolicy(backoff_base_s=0.4), timeout_s=1.0, retry_when=neverbounce_busy,
            throttled=neverbounce_throttled,
        )  # fmt: skip
        verifier = NeverBounceClient(NB_KEY, session, url, requests_per_second=1000.0)
    app.inject("neverbounce", "429")
    with connect(database_url) as conn:
        started = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8 AS t").fetchone()["t"]
    with verifier.paced(database_url):
        assert verifier.verify("jane@strict.io").status == "valid"
    assert [(r.status, r.fault) for r in app.log.records("neverbounce")] == [(200, "429"), (200, None)]
    key = bucket_key("neverbounce", NB_KEY)
    with connect(database_url) as conn:
        [row] = conn.execute("SELECT blocked_until FROM rate_buckets WHERE key = %s", (key,)).fetchall()
    assert row["blocked_until"] >= started + 0.2  # paused for the first retry's wait: 0.2 to 0.4 s


def test_request_log_never_holds_a_key(app: HttpEmulator, zerobounce: ZeroBounceResource) -> None:
    zerobounce.verify("jane@strict.io")
    (record,) = app.log.records("zerobounce")
    assert (record.method, record.path, record.api_key, record.cost) == ("GET", "/v2/validate", "...0001", 1)


@pytest.mark.parametrize(
    ("keys", "probing", "chosen"),
    [
        ((), "off", None),
        ((NeverBounceResource.ENV_VAR,), "off", "neverbounce"),
        ((ZeroBounceResource.ENV_VAR, NeverBounceResource.ENV_VAR), "off", "zerobounce"),
        ((ZeroBounceResource.ENV_VAR,), "on", None),
        ((ZeroBounceResource.ENV_VAR,), "", None),
    ],
    ids=["none-configured", "neverbounce-only", "both-zerobounce-first", "probing", "probing-by-default"],
)
def test_the_estimate_prices_the_verifier_the_email_stage_asks(
    monkeypatch: pytest.MonkeyPatch, keys: tuple[str, ...], probing: str, chosen: str | None
) -> None:
    """The enrichment estimate (outside Dagster, so from the environment as it is now) picked the paid verifier
    by its own reading of the variables while the stage asked ``paid_verifier``: both decide by ``chosen_verifier``
    now, with the stage's ``verifier: auto``, and read the probing setting by ``smtp.probing_on``; ``leads
    verify``'s clients built from the environment pick the same one."""
    from leads_pipeline.lib.clients.mail_check import mail_check_of_environment
    from leads_pipeline.lib.clients.verifier_clients import paid_verifier, verifier_clients_of_environment
    from leads_pipeline.lib.enrichment.jobs import answering_verifier

    for var in (ZeroBounceResource.ENV_VAR, NeverBounceResource.ENV_VAR):
        monkeypatch.delenv(var, raising=False)
    for var in keys:
        monkeypatch.setenv(var, "key")
    monkeypatch.setenv("LEADS_SMTP_PROBING", probing)
    assert answering_verifier() == chosen
    if probing == "off":
        assert paid_verifier("auto", *verifier_clients_of_environment())[1] == chosen
    assert mail_check_of_environment().probing == (probing != "off"), "verify's check probes when the estimate does"


@pytest.mark.parametrize("client", ["zerobounce", "neverbounce"])
def test_a_verifier_clients_printed_form_holds_no_api_key(client: str) -> None:
    """A client in a log line or a traceback's locals must not show its key (the resources keep it out too)."""
    from leads_pipeline.lib.clients.http import TIMEOUT_S, RetryPolicy, retrying_session
    from leads_pipeline.lib.clients.verifier_clients import NeverBounceClient, ZeroBounceClient

    session = retrying_session(policy=RetryPolicy(), timeout_s=TIMEOUT_S)
    made = (ZeroBounceClient if client == "zerobounce" else NeverBounceClient)("KEY-0xSECRET", session)
    assert "KEY-0xSECRET" not in repr(made) and made.is_configured


def test_a_stage_paces_each_provider_under_its_own_key(database_url: str) -> None:
    zerobounce = ZeroBounceResource(api_key=ZB_KEY)
    with zerobounce.paced(database_url) as bucket:
        assert isinstance(bucket, SharedTokenBucket) and zerobounce.session().pacer is bucket
        assert (bucket.key, bucket.rate) == (bucket_key("zerobounce", ZB_KEY), 100.0)
    assert zerobounce.session().pacer is None  # after the stage, unpaced again
    twilio = TwilioLookupResource(account_sid="AC-pacing", auth_token="token", requests_per_second=4.0)
    with twilio.paced(database_url) as by_account:
        assert isinstance(by_account, SharedTokenBucket)
        assert (by_account.key, by_account.rate) == (bucket_key("twilio", "AC-pacing"), 4.0)
    with NeverBounceResource().paced(database_url) as keyless:
        assert keyless is None  # no key: nothing to pace
    with NeverBounceResource(api_key=NB_KEY, requests_per_second=None).paced(database_url) as unpaced:
        assert unpaced is None
