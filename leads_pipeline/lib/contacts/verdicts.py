"""One vocabulary for email verdicts, whichever check produced them: SMTP probe, paid verifier, or MX only.

The pipeline stores one status per address (valid, invalid, catch_all, unknown, disposable, role) and a
confidence 0-100 that mail to it reaches a person, the reasons, the method that decided, and each provider's own
answer. These functions are the whole decision table, kept free of I/O so every situation is unit-tested:

- syntax invalid, no mail DNS (NXDOMAIN, null MX, no MX and no A): invalid, whatever else is configured;
- SMTP 250 and the random address refused: valid; both accepted: catch_all; mailbox 5xx: invalid;
  4xx (greylisting), timeouts, policy blocks, DNS hiccups: unknown, never invalid;
- a paid verifier's status as it says (spamtrap, abuse, do_not_mail count as invalid: never mail them);
- MX only (probing off, no verifier): unknown with the MX found, since no mailbox was asked about;
- then flags: a disposable domain makes a deliverable address "disposable", a role local part "role".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from leads_pipeline.lib.clients.dns import MxResult
from leads_pipeline.lib.clients.paid_verdicts import EmailVerdict
from leads_pipeline.lib.clients.smtp import ProbeResult
from leads_pipeline.lib.contacts.emails import ParsedEmail
from leads_pipeline.lib.wording import plain_number

Status = Literal["valid", "invalid", "catch_all", "unknown", "disposable", "role"]

CONFIDENCE: dict[str, int] = {
    "valid": 95,
    "paid_valid": 90,
    "role": 60,
    "catch_all": 50,
    "mx_only": 45,
    "greylisted": 40,
    "unknown": 30,
    "dns_transient": 20,
    "disposable": 10,
    "invalid": 2,
}
"""Confidence that mail reaches a person, by situation: an SMTP 250 from a host that refuses made-up
addresses is the strongest evidence short of sending; a paid verifier's "valid" is the same probe seen through
someone else's IP; a catch-all 250 proves only that the domain takes mail."""


@dataclass(frozen=True)
class Verdict:
    """The verdict on one address. method: what decided it (syntax, mx, smtp, zerobounce, neverbounce);
    providers: each check's own answer by name; provider_cost: what the paid verifier charged for it, in its own
    credits (0 when reused or free; the user's credits are set by ``lib/credits.py`` when it is recorded);
    retry_after: seconds until a greylisting host may answer (unknown only)."""

    email: str
    status: Status
    confidence: int
    method: str
    reasons: tuple[str, ...]
    flags: tuple[str, ...] = ()
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    provider_cost: float = 0.0
    retry_after: float | None = None
    mx_hosts: tuple[str, ...] = ()

    @property
    def deliverable(self) -> bool:
        return self.status in ("valid", "role")

    def details(self) -> dict[str, Any]:
        """What a lead fact keeps in ``details``."""
        out: dict[str, Any] = {
            "email": self.email,
            "status": self.status,
            "method": self.method,
            "reasons": list(self.reasons),
            "flags": list(self.flags),
            "providers": self.providers,
            "mx_hosts": list(self.mx_hosts),
        }
        if self.retry_after is not None:
            out["retry_after_s"] = self.retry_after
        return out

    @classmethod
    def from_details(cls, details: dict[str, Any], confidence: int) -> Verdict:
        """A stored verdict read back (a cached or earlier-paid one), costing nothing now."""
        return cls(
            email=str(details["email"]),
            status=details["status"],
            confidence=confidence,
            method=str(details["method"]),
            reasons=(*details.get("reasons", ()), "reused a stored verdict"),
            flags=tuple(details.get("flags", ())),
            providers=dict(details.get("providers", {})),
            mx_hosts=tuple(details.get("mx_hosts", ())),
        )


def syntax_verdict(parsed: ParsedEmail) -> Verdict | None:
    """invalid when the syntax is; None when the address is worth a DNS lookup."""
    if parsed.valid_syntax:
        return None
    return Verdict(parsed.email, "invalid", CONFIDENCE["invalid"], "syntax", (parsed.error or "invalid syntax",))


def mx_verdict(parsed: ParsedEmail, mx: MxResult) -> Verdict | None:
    """invalid when the domain cannot receive mail, unknown when DNS failed for now; None when it has hosts."""
    if mx.hosts:
        return None
    mx_answer = {"error": mx.error, "transient": mx.transient}
    if mx.transient:
        return _flagged(
            parsed,
            Verdict(
                parsed.email,
                "unknown",
                CONFIDENCE["dns_transient"],
                "mx",
                (f"MX lookup failed for now: {mx.error}",),
                providers={"mx": mx_answer},
            ),
        )
    return Verdict(
        parsed.email,
        "invalid",
        CONFIDENCE["invalid"],
        "mx",
        (f"the domain receives no mail: {mx.error}",),
        tuple(parsed.flags()),
        {"mx": mx_answer},
    )


def mx_only_verdict(
    parsed: ParsedEmail, mx: MxResult, why: str = "SMTP probing is off and no verifier is set"
) -> Verdict:
    """No mailbox check available (``why``): say what DNS showed and that the mailbox was not asked about."""
    how = "A-record fallback" if mx.fallback_a else "MX " + ", ".join(mx.hosts)
    return _flagged(
        parsed,
        Verdict(
            parsed.email,
            "unknown",
            CONFIDENCE["mx_only"],
            "mx",
            (f"domain receives mail ({how}); mailbox not checked: {why}",),
            providers={"mx": {"hosts": list(mx.hosts), "fallback_a": mx.fallback_a}},
            mx_hosts=mx.hosts,
        ),
    )


def smtp_verdict(parsed: ParsedEmail, mx: MxResult, probe: ProbeResult) -> Verdict:
    """The verdict of an SMTP probe of ``parsed`` on the hosts of ``mx``."""
    answer = {"status": probe.status, "code": probe.code, "message": probe.message, "host": probe.host}
    if probe.unreachable:
        answer["unreachable"] = True
    retry_after = None
    if probe.status == "deliverable":
        status: Status = "valid"
        confidence = CONFIDENCE["valid"]
        reason = f"{probe.host} accepts the mailbox and refuses a made-up one ({probe.code})"
    elif probe.status == "catch_all":
        status, confidence = "catch_all", CONFIDENCE["catch_all"]
        reason = f"{probe.host} accepts any address at {parsed.domain} (catch-all): the mailbox cannot be confirmed"
    elif probe.status == "undeliverable":
        status, confidence = "invalid", CONFIDENCE["invalid"]
        reason = f"{probe.host} rejects the mailbox: {probe.code} {probe.message}"
    else:
        status = "unknown"
        greylisted = probe.code is not None and 400 <= probe.code < 500
        confidence = CONFIDENCE["greylisted" if greylisted else "unknown"]
        retry_after = probe.retry_after
        reason = f"no verdict from {probe.host or 'the mail hosts'}: {probe.message}" + (
            f"; retry after {plain_number(retry_after)} s" if retry_after is not None else ""
        )
    verdict = Verdict(
        parsed.email,
        status,
        confidence,
        "smtp",
        (reason,),
        providers={"smtp": answer},
        retry_after=retry_after,
        mx_hosts=mx.hosts,
    )
    return _flagged(parsed, verdict)


_PAID_STATUS: dict[str, Status] = {
    "valid": "valid",
    "invalid": "invalid",
    "catch_all": "catch_all",
    "unknown": "unknown",
    "disposable": "disposable",
    "spamtrap": "invalid",
    "abuse": "invalid",
    "do_not_mail": "invalid",
}


def paid_verdict(parsed: ParsedEmail, mx: MxResult | None, answer: EmailVerdict) -> Verdict:
    """The verdict of a paid verifier (ZeroBounce, NeverBounce) in the pipeline's vocabulary."""
    status = _PAID_STATUS[answer.status]
    confidence = {
        "valid": CONFIDENCE["paid_valid"],
        "invalid": CONFIDENCE["invalid"],
        "catch_all": CONFIDENCE["catch_all"],
        "unknown": CONFIDENCE["unknown"],
        "disposable": CONFIDENCE["disposable"],
    }[status]
    said = answer.status + (f" ({answer.sub_status})" if answer.sub_status else "")
    reason = f"{answer.provider} says {said}"
    if answer.status in ("spamtrap", "abuse", "do_not_mail"):
        reason += ": never mail it"
    verdict = Verdict(
        parsed.email,
        status,
        confidence,
        answer.provider,
        (reason,),
        providers={answer.provider: {"status": answer.status, "sub_status": answer.sub_status, "raw": answer.raw}},
        provider_cost=answer.credits,
        mx_hosts=mx.hosts if mx else (),
    )
    return _flagged(parsed, verdict)


def with_fallback(first: Verdict, second: Verdict) -> Verdict:
    """``second`` (a paid verifier asked after an SMTP "unknown") decides, keeping both answers and reasons."""
    return replace(
        second,
        reasons=(*first.reasons, *second.reasons),
        providers={**first.providers, **second.providers},
        mx_hosts=second.mx_hosts or first.mx_hosts,
    )


def _flagged(parsed: ParsedEmail, verdict: Verdict) -> Verdict:
    flags = tuple(parsed.flags())
    status, confidence, reasons = verdict.status, verdict.confidence, verdict.reasons
    if parsed.disposable and status != "invalid":
        status, confidence = "disposable", min(confidence, CONFIDENCE["disposable"])
        reasons = (*reasons, f"{parsed.domain} is a disposable-mail provider")
    elif parsed.role and status == "valid":
        status, confidence = "role", CONFIDENCE["role"]
        reasons = (*reasons, f"{parsed.local}@ is a role account, not a person")
    return replace(verdict, status=status, confidence=confidence, reasons=reasons, flags=flags)
