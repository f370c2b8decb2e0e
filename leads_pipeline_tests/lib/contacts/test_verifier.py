"""The verification pipeline over the wire: sandbox DNS and mail hosts, the paid verifiers, injected faults."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.clients.mail import MailCheckResource
from leads_pipeline.lib.clients.verifiers import NeverBounceResource, ZeroBounceResource
from leads_pipeline.lib.contacts.verdicts import Verdict
from leads_pipeline.lib.contacts.verifier import EmailVerifier, NoLedger, VerifierSettings
from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.smtp import SmtpSettings
from leads_pipeline.sandbox.world import Person, World


def mail_check(sandbox: Sandbox, **overrides: object) -> MailCheckResource:
    env = sandbox.env()
    settings: dict[str, object] = {
        "dns_server": env["LEADS_DNS_SERVER"],
        "smtp_port": int(env["LEADS_SMTP_PORT"]),
        "smtp_routes": env["LEADS_SMTP_ROUTES"],
        "timeout_s": 2.0,
    }
    settings.update(overrides)
    return MailCheckResource(**settings)  # type: ignore[arg-type]


def verifier(sandbox: Sandbox, **kwargs: object) -> EmailVerifier:
    mail = mail_check(sandbox)
    resolver = mail.resolver()
    return EmailVerifier(resolver, mail.prober(resolver), **kwargs)  # type: ignore[arg-type]


def person_at(world: World, behaviour: str) -> Person:
    for person in world.people:
        company = world.company(person.company_domain)
        if company and company.mx_behaviour == behaviour and person.email:
            return person
    raise AssertionError(f"the test world has nobody at a {behaviour} domain")


@pytest.mark.parametrize(
    ("behaviour", "real", "made_up"),
    [
        ("strict", "valid", "invalid"),
        ("catch_all", "catch_all", "catch_all"),
        ("accepts", "catch_all", "catch_all"),
        ("greylist", "valid", "invalid"),
        ("no_mx", "valid", "invalid"),
    ],
)
def test_verdicts_match_the_worlds_truth(
    sandbox: Sandbox, sandbox_world: World, behaviour: str, real: str, made_up: str
) -> None:
    person = person_at(sandbox_world, behaviour)
    assert person.email is not None
    fake = f"nobody.{person.id.lower()}@{person.company_domain}"
    verdicts = verifier(sandbox).verify_many([person.email, fake])
    assert verdicts[person.email].status == real, verdicts[person.email].reasons
    assert verdicts[fake].status == made_up, verdicts[fake].reasons
    assert verdicts[person.email].method == "smtp"


def test_unknown_domains_are_invalid_and_timeouts_unknown(sandbox: Sandbox, sandbox_world: World) -> None:
    person = person_at(sandbox_world, "timeout")
    assert person.email is not None
    verdicts = verifier(sandbox).verify_many(["someone@no-such-domain.example", person.email, "bad@@x"])
    assert verdicts["someone@no-such-domain.example"].status == "invalid"
    assert verdicts["bad@@x"].method == "syntax"
    slow = verdicts[person.email]
    assert slow.status == "unknown" and "timed out" in slow.reasons[0]


def test_greylisting_longer_than_the_wait_stays_unknown_with_its_delay(sandbox_world: World) -> None:
    person = person_at(sandbox_world, "greylist")
    assert person.email is not None
    with Sandbox.start(sandbox_world, smtp_settings=SmtpSettings(greylist_delay=120)) as slow_grey:
        verdict = verifier(slow_grey).verify_many([person.email])[person.email]
    assert verdict.status == "unknown" and verdict.retry_after is not None and verdict.retry_after > 60


def test_injected_smtp_faults_are_never_invalid(sandbox_world: World) -> None:
    person = person_at(sandbox_world, "strict")
    assert person.email is not None
    faults = SmtpSettings(unavailable=0.5, temporary_failure=0.5, dropped=0.2, seed=3)
    with Sandbox.start(sandbox_world, smtp_settings=faults) as flaky:
        check = verifier(flaky, settings=VerifierSettings(greylist_wait_s=0))
        statuses = [check.verify_many([person.email])[person.email].status for _ in range(8)]
    assert "invalid" not in statuses and "unknown" in statuses


class RecordingLedger(NoLedger):
    def __init__(self) -> None:
        self.recorded: list[Verdict] = []

    def lookup(self, email: str, method: str, lead: int | None) -> Verdict | None:
        return next((v for v in self.recorded if v.email == email and v.method == method), None)

    def record(self, verdict: Verdict, lead: int | None) -> None:
        self.recorded.append(verdict)


@pytest.mark.parametrize("provider", ["zerobounce", "neverbounce"])
def test_probing_off_uses_the_paid_verifier_once(sandbox: Sandbox, sandbox_world: World, provider: str) -> None:
    env = sandbox.env()
    paid = (
        ZeroBounceResource(api_key=env["ZEROBOUNCE_API_KEY"], base_url=env["ZEROBOUNCE_BASE_URL"])
        if provider == "zerobounce"
        else NeverBounceResource(api_key=env["NEVERBOUNCE_API_KEY"], base_url=env["NEVERBOUNCE_BASE_URL"])
    )
    mail = mail_check(sandbox, smtp_probing="off")
    ledger = RecordingLedger()
    check = EmailVerifier(mail.resolver(), mail.prober(mail.resolver()), paid, provider, ledger=ledger)
    assert check.method == provider
    person = person_at(sandbox_world, "strict")
    assert person.email is not None
    first = check.verify_many([person.email])[person.email]
    again = check.verify_many([person.email])[person.email]
    assert first.status == "valid" and first.method == provider and first.provider_cost > 0
    assert again.status == "valid" and len(ledger.recorded) == 1


class RefusingLedger(NoLedger):
    """A ledger whose credit budget allows no paid call."""

    def reserve(self, method: str, email: str, lead: int | None) -> bool:
        return False


def test_a_paid_verifier_the_budget_cannot_pay_for_is_not_asked(sandbox: Sandbox, sandbox_world: World) -> None:
    assert sandbox.http_app is not None
    env = sandbox.env()
    paid = ZeroBounceResource(api_key=env["ZEROBOUNCE_API_KEY"], base_url=env["ZEROBOUNCE_BASE_URL"])
    mail = mail_check(sandbox, smtp_probing="off")
    check = EmailVerifier(mail.resolver(), None, paid, "zerobounce", ledger=RefusingLedger())
    person = person_at(sandbox_world, "strict")
    assert person.email is not None
    sandbox.http_app.reset()

    verdict = check.verify_many([person.email])[person.email]

    assert verdict.status == "unknown" and verdict.method == "mx" and verdict.provider_cost == 0
    assert "zerobounce was not asked: the credit budget or the lead's cap is used up" in verdict.reasons[0]
    assert sandbox.http_app.log.records("zerobounce") == []


def test_probing_off_without_a_verifier_checks_mx_only(sandbox: Sandbox, sandbox_world: World) -> None:
    mail = mail_check(sandbox, smtp_probing="off")
    check = EmailVerifier(mail.resolver(), mail.prober(mail.resolver()))
    person = person_at(sandbox_world, "strict")
    assert person.email is not None
    verdict = check.verify_many([person.email])[person.email]
    assert check.method == "mx" and verdict.method == "mx" and verdict.status == "unknown"


def test_bad_mail_settings_are_explained(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigurationError, match="LEADS_SMTP_PROBING"):
        _ = mail_check(sandbox, smtp_probing="maybe").probing
    with pytest.raises(ConfigurationError, match="LEADS_SMTP_ROUTES"):
        mail = mail_check(sandbox, smtp_routes="mx1.acme.com")
        mail.prober(mail.resolver())


def test_a_silent_host_is_not_waited_for_again(sandbox: Sandbox, sandbox_world: World) -> None:
    person = person_at(sandbox_world, "timeout")
    assert person.email is not None
    check = verifier(sandbox, settings=VerifierSettings(workers=1))
    verdicts = [check.verify_many([f"n{i}.{person.email}"])[f"n{i}.{person.email}"] for i in range(3)]
    assert [v.status for v in verdicts] == ["unknown"] * 3
    assert ["not asked again" in v.reasons[0] for v in verdicts] == [False, False, True]
