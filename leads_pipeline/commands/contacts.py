"""``leads verify`` and ``leads find-email``: the email pipeline on addresses typed at the prompt.

The same verifier and pattern model as the ``email_contacts`` asset, configured from the same environment
variables (LEADS_DNS_SERVER, LEADS_SMTP_*, ZEROBOUNCE_API_KEY, NEVERBOUNCE_API_KEY). Paid verdicts are cached in
the database like the asset's, so asking twice does not pay twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leads_pipeline.commands.common import (
    Table,
    environment,
    fail,
    print_json,
    print_line,
    print_table,
    run_or_fail,
)

if TYPE_CHECKING:  # the engine loads the DNS and SMTP clients, which only the commands that verify use
    from leads_pipeline.lib.contacts.verifier import EmailVerifier

VERIFIER_HELP = "Paid verifier: auto (the first configured), zerobounce, neverbounce or none."


class Verifier(StrEnum):
    """The --verifier choices: a typo is refused by name with the choices listed, before any configuration
    check could call it an unconfigured provider."""

    auto = "auto"
    zerobounce = "zerobounce"
    neverbounce = "neverbounce"
    none = "none"


@contextmanager
def _verifier(choice: str, database_url: str, workers: int = 16) -> Iterator[EmailVerifier]:
    """The verifier of ``choice``, its paid provider paced within the block by the bucket of its key that the
    contact stages pace it by (``*_REQUESTS_PER_SECOND``): a command's workers and every run verifying under the
    key at once share its rate, and a 429's pause holds them all."""
    from leads_pipeline.lib.clients.mail_check import mail_check_of_environment
    from leads_pipeline.lib.clients.verifier_clients import paid_verifier, verifier_clients_of_environment
    from leads_pipeline.lib.contacts.verifier import EmailVerifier, VerifierSettings

    mail = mail_check_of_environment()
    clients = verifier_clients_of_environment()
    paid, name = paid_verifier(choice, *clients)
    chosen = next((client for client in clients if client is paid), None)
    resolver = mail.resolver()
    settings = VerifierSettings(probing=mail.probing, workers=workers)
    with chosen.paced(database_url) if chosen is not None else nullcontext():
        yield EmailVerifier(resolver, mail.prober(resolver), paid, name, settings=settings)


def verify(
    emails: Annotated[list[str], typer.Argument(help="Addresses to verify.")],
    verifier: Annotated[Verifier, typer.Option(help=VERIFIER_HELP)] = Verifier.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Verify email addresses: syntax, MX, SMTP probe with catch-all detection (or a paid verifier)."""
    from datetime import timedelta

    from leads_pipeline.lib.store.contacts import VerificationLedger

    env = run_or_fail(environment)

    def check() -> list[dict[str, Any]]:
        with (
            _verifier(verifier.value, env.database_url) as engine,
            VerificationLedger(env.database_url, None, timedelta(days=30)) as ledger,
        ):
            engine.ledger = ledger
            verdicts = engine.verify_many(emails)
        return [
            {"confidence": v.confidence, "provider_cost": v.provider_cost, **v.details()} for v in verdicts.values()
        ]

    rows = run_or_fail(check)
    if as_json:
        print_json(rows)
        return
    table = Table("email", "status", "confidence", "method", "reasons")
    lines = []
    for row in rows:
        reasons = "; ".join(row["reasons"])
        table.add_row(row["email"], row["status"], str(row["confidence"]), row["method"], reasons)
        # narrower than the table (80 columns: a pipe) an address was cut to a dozen letters and its reasons to a
        # word: each address takes two lines, every value whole
        why = f": {reasons}" if reasons else ""
        lines.append((row["email"], f"{row['status']} (confidence {row['confidence']}, {row['method']}){why}"))
    print_table(table, lines)


def find_email(
    first_name: str,
    last_name: str,
    domain: str,
    candidates: Annotated[int, typer.Option(min=1, help="How many guesses to verify at most.")] = 4,
    verifier: Annotated[Verifier, typer.Option(help=VERIFIER_HELP)] = Verifier.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find a person's address at DOMAIN from the domain's learned pattern, verifying guesses in order."""
    from leads_pipeline.lib.contacts.email_batch import EmailOptions, EmailStage
    from leads_pipeline.lib.normalize import one_value

    # A DOMAIN that is none ("acme", "not a domain") had every guess tried and refused for its syntax, and a URL
    # was glued into the guesses (jane@http://acme.com/x), exit code 0 either way: read it as the import does.
    domain, problem = one_value("company_domain", domain)
    if not domain:
        fail(f"DOMAIN: {problem or 'empty'}; the company's domain, like acme.com (a website URL will do)")
    if not (first_name.strip() and last_name.strip()):
        fail("FIRST_NAME and LAST_NAME: the guesses need both; got an empty one")
    env = run_or_fail(environment)

    def find() -> dict[str, Any]:
        options = EmailOptions(max_candidates=candidates, people_search=False)  # no Apify call
        with _verifier(verifier.value, env.database_url) as engine:
            found = EmailStage(env.database_url, "", engine, None, options).find(first_name, last_name, domain)
        return {
            "email": found.email,
            "status": found.status,
            "confidence": found.confidence,
            "source": found.source,
            "pattern": found.candidate.pattern if found.candidate else None,
            "reason": found.reason,
            "tried": [{"email": e, "status": s, "method": m} for e, s, m in found.tried],
        }

    result = run_or_fail(find)
    if as_json:
        print_json(result)
        return
    if result["email"]:
        print_line(
            (result["email"], "bold"),
            f" {result['status']} (confidence {result['confidence']}): {result['reason']}",
        )
    else:
        print_line(f"no address found: {result['reason']}")
    for attempt in result["tried"]:
        print_line(f"  tried {attempt['email']}: {attempt['status']} ({attempt['method']})")
