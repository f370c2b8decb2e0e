"""A provider tour for ``make demo``: one call of each real client, over the wire, against a running sandbox.

The tour shows a newcomer what each provider contributes to a lead (an email, a LinkedIn URL, a line type, a
mailbox verdict) and proves, before anyone buys credits, that every client is wired to its endpoint. The
clients are configured only from ``sandbox.env()``, exactly as the pipeline configures them from the
environment, so a green tour also checks the settings ``leads sandbox up`` prints. Each answer is compared
with the world's truth: a step is ok only when the call succeeded and said what the world says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from leads_pipeline.lib.clients.apify import ApifyResource
from leads_pipeline.lib.clients.dns import MxResolver
from leads_pipeline.lib.clients.gemini import GeminiResource
from leads_pipeline.lib.clients.smtp import SmtpProber
from leads_pipeline.lib.clients.twilio import TwilioLookupResource
from leads_pipeline.lib.clients.verifiers import NeverBounceResource, ZeroBounceResource
from leads_pipeline.lib.wording import credit_amount, plain_number
from leads_pipeline.sandbox.server import Sandbox
from leads_pipeline.sandbox.world import Company, Person, World


@dataclass(frozen=True)
class TourStep:
    """One call of the tour.

    provider: who was asked ("Apify", "Gemini", "ZeroBounce", ...); call: the client method and its
    arguments; answer: what came back, in a few words ("" when the call failed); ok: the call succeeded and
    the answer agrees with the world; detail: "matches the world", or what the world expected, or the error.
    """

    provider: str
    call: str
    answer: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class _Clients:
    apify: ApifyResource
    gemini: GeminiResource
    zerobounce: ZeroBounceResource
    neverbounce: NeverBounceResource
    twilio: TwilioLookupResource
    resolver: MxResolver
    prober: SmtpProber


def tour_subjects(world: World) -> tuple[Person, Company]:
    """The person (and employer) the tour asks about: the first with an email, a phone and a LinkedIn profile
    at a company whose mail host is ``strict``, so every provider has a definite answer to give.

    Raises ``ValueError`` when the world has nobody like that (a hand-made world may not).
    """
    for person in world.people:
        company = world.company(person.company_domain)
        if company and company.mx_behaviour == "strict" and person.email and person.phones and person.linkedin:
            return person, company
    raise ValueError(
        "the world has no person with an email, a phone and a LinkedIn profile at a company with a strict mail"
        " host; use a generated world (leads sandbox world generate)"
    )


def run_tour(sandbox: Sandbox, world: World) -> list[TourStep]:
    """Ask every provider about one person of ``world`` through the running ``sandbox``; never raises for a
    failed call (its step has ok False and the error in ``detail``)."""
    person, company = tour_subjects(world)
    clients = _clients(sandbox.env())
    email, profile, phone = person.email, person.linkedin, person.phones[0]
    assert email and profile, "tour_subjects picks only people with both"

    def people_search() -> tuple[str, str | None]:
        matches = clients.apify.people_search(person.first_name, person.last_name, company.domain)
        if not matches:
            return "nobody found", "expected one match"
        found = matches[0]
        phones = ", ".join(f"{p.number} ({p.type})" for p in found.phones) or "no phone"
        return f"{found.email}, {phones}, {found.title}", _mismatch(
            email=(email, found.email),
            title=(person.title, found.title),
            phones=({p.number for p in person.phones}, {p.number for p in found.phones}),
        )

    query = f'"{person.first_name} {person.last_name}" {company.name} site:linkedin.com/in'

    def google_search() -> tuple[str, str | None]:
        results = clients.apify.google_search(query)
        url = results[0].url if results else None
        return url or "no result", _mismatch(linkedin_url=(profile.url, url))

    def linkedin_profile() -> tuple[str, str | None]:
        profiles = clients.apify.linkedin_profiles([profile.url])
        if not profiles:
            return "no profile", "expected the profile"
        found = profiles[0]
        return f"{found.headline!r}, degree {found.connection_degree}", _mismatch(
            headline=(profile.headline, found.headline), degree=(profile.connection_degree, found.connection_degree)
        )

    def research_company() -> tuple[str, str | None]:
        facts = clients.gemini.research_company(company.name, company.domain)
        answer = f"{facts.industry}, {facts.employee_count} employees, sources: {len(facts.sources)}"
        return answer, _mismatch(
            found=(True, facts.found),
            industry=(company.industry, facts.industry),
            employee_count=(company.employee_count, facts.employee_count),
            has_sources=(True, bool(facts.sources)),
        )

    def zerobounce() -> tuple[str, str | None]:
        verdict = clients.zerobounce.verify(email)
        return f"{verdict.status} ({credit_amount(verdict.credits)})", _mismatch(status=("valid", verdict.status))

    def neverbounce() -> tuple[str, str | None]:
        verdict = clients.neverbounce.verify(email)
        return f"{verdict.status} ({credit_amount(verdict.credits)})", _mismatch(status=("valid", verdict.status))

    def twilio() -> tuple[str, str | None]:
        result = clients.twilio.lookup(phone.number)
        carrier = f", {result.carrier_name}" if result.carrier_name else ""
        answer = f"{result.line_type}{carrier} (${plain_number(result.cost_usd)})"
        return answer, _mismatch(valid=(True, result.valid), line_type=(phone.line_type, result.line_type))

    def mx_lookup() -> tuple[str, str | None]:
        result = clients.resolver.lookup_mx(company.domain)
        answer = ", ".join(result.hosts) or f"no mail host: {result.error}"
        return answer, _mismatch(mx_hosts=(company.mx_hosts, result.hosts))

    def smtp_probe() -> tuple[str, str | None]:
        result = clients.prober.probe(email, company.mx_hosts)
        return f"{result.status} ({result.code}) on {result.host}", _mismatch(status=("deliverable", result.status))

    name = f"{person.first_name!r}, {person.last_name!r}"
    return [
        _step("Apify", f"people_search({name}, {company.domain!r})", people_search),
        _step("Apify", f"google_search({query!r})", google_search),
        _step("Apify", f"linkedin_profiles([{profile.url!r}])", linkedin_profile),
        _step("Gemini", f"research_company({company.name!r}, {company.domain!r})", research_company),
        _step("ZeroBounce", f"verify({email!r})", zerobounce),
        _step("NeverBounce", f"verify({email!r})", neverbounce),
        _step("Twilio Lookup", f"lookup({phone.number!r})", twilio),
        _step("DNS", f"lookup_mx({company.domain!r})", mx_lookup),
        _step("SMTP", f"probe({email!r})", smtp_probe),
    ]


def _clients(env: Mapping[str, str]) -> _Clients:
    """Every client configured from the sandbox's settings, the names the resources read in production."""
    resolver = MxResolver(env["LEADS_DNS_SERVER"])
    return _Clients(
        apify=ApifyResource(token=env[ApifyResource.ENV_VAR], api_url=env[ApifyResource.URL_ENV_VAR]),
        gemini=GeminiResource(api_key=env[GeminiResource.ENV_VAR], base_url=env[GeminiResource.URL_ENV_VAR]),
        zerobounce=ZeroBounceResource(
            api_key=env[ZeroBounceResource.ENV_VAR], base_url=env[ZeroBounceResource.URL_ENV_VAR]
        ),
        neverbounce=NeverBounceResource(
            api_key=env[NeverBounceResource.ENV_VAR], base_url=env[NeverBounceResource.URL_ENV_VAR]
        ),
        twilio=TwilioLookupResource(
            account_sid=env[TwilioLookupResource.SID_ENV_VAR],
            auth_token=env[TwilioLookupResource.TOKEN_ENV_VAR],
            base_url=env[TwilioLookupResource.URL_ENV_VAR],
        ),
        resolver=resolver,
        prober=SmtpProber(
            port=int(env["LEADS_SMTP_PORT"]),
            resolve=resolver.resolve_address if env.get("LEADS_SMTP_ROUTES") == "dns" else None,
        ),
    )


def _step(provider: str, call: str, run: Callable[[], tuple[str, str | None]]) -> TourStep:
    """Run one call: ``run`` returns the answer and what disagrees with the world (None if nothing)."""
    try:
        answer, mismatch = run()
    except Exception as error:  # the tour shows every provider, so one failure must not hide the others
        return TourStep(provider, call, "", False, f"{type(error).__name__}: {error}")
    return TourStep(provider, call, answer, mismatch is None, mismatch or "matches the world")


def _mismatch(**pairs: tuple[Any, Any]) -> str | None:
    """``"expected <key> <truth>, found <answer>; ..."`` for each (truth, answer) pair that differs."""
    wrong = [f"expected {key} {truth!r}, found {found!r}" for key, (truth, found) in pairs.items() if truth != found]
    return "; ".join(wrong) or None
