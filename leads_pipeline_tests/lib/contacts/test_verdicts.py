"""The verdict table: every SMTP situation, paid verifier answers, MX-only mode, and the flags."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.clients.dns import MxResult
from leads_pipeline.lib.clients.paid_verdicts import EmailVerdict
from leads_pipeline.lib.clients.smtp import ProbeResult
from leads_pipeline.lib.contacts.emails import parse_email
from leads_pipeline.lib.contacts.verdicts import (
    mx_only_verdict,
    mx_verdict,
    paid_verdict,
    smtp_verdict,
    syntax_verdict,
    with_fallback,
)

MX = MxResult("acme.com", ("mx1.acme.com",))


def test_parse_email_normalizes_and_flags() -> None:
    parsed = parse_email("  Info@Mailinator.com ")
    assert (parsed.email, parsed.local, parsed.domain) == ("info@mailinator.com", "info", "mailinator.com")
    assert parsed.disposable and parsed.role and not parsed.free
    assert parse_email("jane.doe@gmail.com").free
    assert parse_email("x@sub.mailinator.com").disposable


@pytest.mark.parametrize("text", ["no-at-sign", "a@b", "two@@acme.com", "jane doe@acme.com"])
def test_bad_syntax_is_invalid_without_a_lookup(text: str) -> None:
    verdict = syntax_verdict(parse_email(text))
    assert verdict is not None and verdict.status == "invalid" and verdict.method == "syntax"
    assert "invalid syntax" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("probe", "status"),
    [
        (ProbeResult("deliverable", 250, "ok", "mx1.acme.com"), "valid"),
        (ProbeResult("catch_all", 250, "ok", "mx1.acme.com"), "catch_all"),
        (ProbeResult("undeliverable", 550, "5.1.1 no such user", "mx1.acme.com"), "invalid"),
        (ProbeResult("unknown", 451, "greylisted", "mx1.acme.com", retry_after=60), "unknown"),
        (ProbeResult("unknown", None, "no answer within 10 s", "mx1.acme.com"), "unknown"),
        (ProbeResult("unknown", 554, "policy rejection: 5.7.1 blocked", "mx1.acme.com"), "unknown"),
    ],
)
def test_smtp_situations(probe: ProbeResult, status: str) -> None:
    verdict = smtp_verdict(parse_email("jane.doe@acme.com"), MX, probe)
    assert verdict.status == status
    assert verdict.method == "smtp" and verdict.providers["smtp"]["code"] == probe.code
    assert verdict.mx_hosts == MX.hosts


def test_greylisting_keeps_its_retry_delay_and_timeouts_never_read_as_invalid() -> None:
    grey = smtp_verdict(parse_email("a@acme.com"), MX, ProbeResult("unknown", 451, "wait", "mx1", 60.0))
    assert grey.retry_after == 60.0 and "retry after 60 s" in grey.reasons[0]
    slow = smtp_verdict(parse_email("a@acme.com"), MX, ProbeResult("unknown", None, "timeout", "mx1"))
    assert slow.retry_after is None and slow.confidence < grey.confidence


def test_no_mail_dns_is_invalid_but_a_dns_failure_is_unknown() -> None:
    parsed = parse_email("jane@nowhere.example")
    gone = mx_verdict(parsed, MxResult("nowhere.example", (), error="NXDOMAIN: the domain does not exist"))
    assert gone is not None and gone.status == "invalid" and "receives no mail" in gone.reasons[0]
    hiccup = mx_verdict(parsed, MxResult("nowhere.example", (), error="timeout", transient=True))
    assert hiccup is not None and hiccup.status == "unknown"
    assert mx_verdict(parsed, MX) is None


def test_mx_only_says_the_mailbox_was_not_checked() -> None:
    verdict = mx_only_verdict(parse_email("jane@acme.com"), MX)
    assert verdict.status == "unknown" and verdict.method == "mx"
    assert "mailbox not checked" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("answer", "status"),
    [("valid", "valid"), ("catch_all", "catch_all"), ("spamtrap", "invalid"), ("disposable", "disposable")],
)
def test_paid_verdicts_keep_the_providers_own_answer(answer: str, status: str) -> None:
    raw = {"status": answer}
    verdict = paid_verdict(
        parse_email("jane@acme.com"),
        MX,
        EmailVerdict("jane@acme.com", answer, None, "zerobounce", 1.0, raw),  # type: ignore[arg-type]
    )
    assert verdict.status == status and verdict.method == "zerobounce" and verdict.provider_cost == 1.0
    assert verdict.providers["zerobounce"]["status"] == answer


def test_flags_turn_deliverable_addresses_into_disposable_or_role() -> None:
    ok = ProbeResult("deliverable", 250, "ok", "mx")
    assert smtp_verdict(parse_email("sales@acme.com"), MX, ok).status == "role"
    assert smtp_verdict(parse_email("bob@mailinator.com"), MX, ok).status == "disposable"
    bounced = ProbeResult("undeliverable", 550, "no", "mx")
    assert smtp_verdict(parse_email("sales@acme.com"), MX, bounced).status == "invalid"


def test_fallback_keeps_both_answers() -> None:
    parsed = parse_email("jane@acme.com")
    first = smtp_verdict(parsed, MX, ProbeResult("unknown", None, "timeout", "mx"))
    second = paid_verdict(parsed, MX, EmailVerdict(parsed.email, "valid", None, "neverbounce", 1.0, {}))
    merged = with_fallback(first, second)
    assert merged.status == "valid" and set(merged.providers) == {"smtp", "neverbounce"}
    assert len(merged.reasons) == 2
