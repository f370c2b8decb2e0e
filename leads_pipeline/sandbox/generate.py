"""Generate a sandbox world (and lead files drawn from it) out of public sample data, reproducibly for a seed.

Names, company names, industries, sizes and job titles come from the datablist sample files in
``shared/data/datablist`` so the world looks like the data users import. The rest (domains, email patterns,
mail server behaviour, phones, LinkedIn profiles) is drawn with shares measured on real B2B data, so discovery
and verification rates measured against the sandbox are in the range seen in production. Every draw goes
through one ``random.Random(seed)``: the same seed and data give a byte-identical world file.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType, carrier

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.sandbox.world import (
    Company,
    EmailPattern,
    Experience,
    LineType,
    LinkedInProfile,
    MxBehaviour,
    Person,
    Phone,
    World,
    email_name,
)

AS_OF_YEAR = 2025
"""Experience dates are drawn relative to this year, not today, so a seed gives the same world every day."""

MX_SHARES: dict[MxBehaviour, float] = {
    "strict": 0.60,
    "catch_all": 0.20,
    "accepts": 0.08,
    "greylist": 0.05,
    "timeout": 0.04,
    "no_mx": 0.03,
}
PATTERN_SHARES: dict[str, float] = {
    "{first}.{last}": 0.45,
    "{f}{last}": 0.20,
    "{first}": 0.10,
    "{first}{l}": 0.07,
    "{first}_{last}": 0.05,
    "{first}{last}": 0.04,
    "{last}{f}": 0.04,
    "{f}.{last}": 0.02,
    "{last}.{first}": 0.02,
    "{last}": 0.01,
}
SECOND_PATTERN_SHARE = 0.15
"""Share of domains with two live patterns (usually after a migration or merger)."""
EXCEPTION_EMAIL_SHARE = 0.03
"""Share of people whose address follows none of their domain's patterns (nicknames, duplicates, legacy)."""
SENIORITY_SHARES: dict[str, float] = {
    "c_suite": 0.04,
    "vp": 0.07,
    "director": 0.13,
    "manager": 0.20,
    "senior": 0.21,
    "entry": 0.35,
}
DEPARTMENTS: dict[str, tuple[str, float]] = {
    "engineering": ("Engineering", 0.20),
    "sales": ("Sales", 0.18),
    "marketing": ("Marketing", 0.11),
    "operations": ("Operations", 0.12),
    "finance": ("Finance", 0.08),
    "it": ("IT", 0.08),
    "human_resources": ("Human Resources", 0.06),
    "customer_success": ("Customer Success", 0.07),
    "product": ("Product", 0.07),
    "legal": ("Legal", 0.03),
}
CHIEF_TITLES = {
    "engineering": "Chief Technology Officer",
    "sales": "Chief Revenue Officer",
    "marketing": "Chief Marketing Officer",
    "operations": "Chief Operating Officer",
    "finance": "Chief Financial Officer",
    "it": "Chief Information Officer",
    "human_resources": "Chief People Officer",
    "customer_success": "Chief Customer Officer",
    "product": "Chief Product Officer",
    "legal": "General Counsel",
}
DEPARTMENT_KEYWORDS = (
    ("engineering", ("engineer", "developer", "programmer", "scientist", "technician", "architect")),
    ("finance", ("accountant", "financ", "tax", "auditor", "bank", "actuar", "insurance", "economist")),
    ("sales", ("sales", "buyer", "retail", "merchandis", "estate agent", "broker")),
    ("marketing", ("marketing", "advertis", "public relations", "copywriter", "designer", "media")),
    ("human_resources", ("human resources", "recruit", "personnel", "training", "careers")),
    ("legal", ("lawyer", "solicitor", "barrister", "legal", "paralegal", "licensed conveyancer")),
    ("it", ("information", "systems", "database", "web", "network", "it ")),
)
TECHNOLOGIES = (
    "Salesforce",
    "HubSpot",
    "Slack",
    "Zoom",
    "AWS",
    "Google Cloud",
    "Microsoft Azure",
    "Shopify",
    "WordPress",
    "Stripe",
    "Zendesk",
    "Intercom",
    "Jira",
    "GitHub",
    "Marketo",
    "Mailchimp",
    "Segment",
    "Snowflake",
    "Workday",
    "SAP",
    "Tableau",
    "Cloudflare",
)
LEGAL_SUFFIXES = frozenset({"plc", "llc", "ltd", "inc", "corp", "gmbh", "sa", "ag"})
K = TypeVar("K")


@dataclass(frozen=True)
class CountryProfile:
    """How companies and people of one country look: its name in files, web TLDs, cities, share of leads."""

    name: str
    weight: float
    tlds: Mapping[str, float]
    cities: tuple[str, ...]


COUNTRIES: dict[str, CountryProfile] = {
    "US": CountryProfile(
        "United States",
        0.38,
        {"com": 0.82, "io": 0.08, "co": 0.04, "net": 0.03, "ai": 0.03},
        ("New York", "San Francisco", "Austin", "Chicago", "Boston", "Seattle", "Atlanta", "Denver"),
    ),
    "GB": CountryProfile(
        "United Kingdom",
        0.12,
        {"co.uk": 0.55, "com": 0.35, "io": 0.10},
        ("London", "Manchester", "Edinburgh", "Bristol", "Leeds"),
    ),
    "DE": CountryProfile(
        "Germany", 0.08, {"de": 0.70, "com": 0.25, "io": 0.05}, ("Berlin", "Munich", "Hamburg", "Frankfurt")
    ),
    "FR": CountryProfile("France", 0.06, {"fr": 0.60, "com": 0.40}, ("Paris", "Lyon", "Toulouse", "Nantes")),
    "IN": CountryProfile(
        "India", 0.07, {"in": 0.30, "co.in": 0.20, "com": 0.50}, ("Bengaluru", "Mumbai", "Pune", "Hyderabad")
    ),
    "BR": CountryProfile("Brazil", 0.04, {"com.br": 0.70, "com": 0.30}, ("São Paulo", "Rio de Janeiro")),
    "AU": CountryProfile("Australia", 0.05, {"com.au": 0.70, "com": 0.30}, ("Sydney", "Melbourne", "Brisbane")),
    "CA": CountryProfile("Canada", 0.06, {"ca": 0.50, "com": 0.50}, ("Toronto", "Vancouver", "Montreal")),
    "NL": CountryProfile("Netherlands", 0.04, {"nl": 0.65, "com": 0.35}, ("Amsterdam", "Rotterdam", "Utrecht")),
    "ES": CountryProfile("Spain", 0.04, {"es": 0.60, "com": 0.40}, ("Madrid", "Barcelona", "Valencia")),
    "IT": CountryProfile("Italy", 0.03, {"it": 0.60, "com": 0.40}, ("Milan", "Rome", "Turin")),
    "SE": CountryProfile("Sweden", 0.03, {"se": 0.60, "com": 0.40}, ("Stockholm", "Gothenburg", "Malmö")),
}
_DATABLIST_COUNTRY_NAMES = {
    "United States of America": "US",
    **{p.name: code for code, p in COUNTRIES.items()},
}
_PHONE_TYPES: dict[str, tuple[int, frozenset[int]]] = {
    "mobile": (
        PhoneNumberType.MOBILE,
        frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}),
    ),
    "landline": (
        PhoneNumberType.FIXED_LINE,
        frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}),
    ),
    "voip": (PhoneNumberType.VOIP, frozenset({PhoneNumberType.VOIP})),
}
LEAD_FIELDS = ("email", "phone", "linkedin", "website", "title")
"""Fields ``write_leads_csv`` can blank, as keys of ``fraction_missing``."""
LEAD_COLUMNS = (
    "First Name",
    "Last Name",
    "Company",
    "Title",
    "Email",
    "Phone",
    "LinkedIn URL",
    "Website",
    "Country",
)


def default_data_dir() -> Path:
    """``shared/data`` beside the repository checkout (the layout of developer machines and CI)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


@dataclass(frozen=True)
class _Organization:
    name: str
    country: str | None  # ISO code when the datablist country is one of COUNTRIES
    industry: str
    employees: int
    founded: int | None


@dataclass(frozen=True)
class _Sources:
    organizations: tuple[_Organization, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    titles: tuple[str, ...]


def _read_csv(path: Path) -> Iterator[dict[str, str]]:
    if not path.is_file():
        raise ConfigurationError(f"sample data file {path} not found: pass --data-dir DIR naming a copy of shared/data")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _load_sources(data_dir: Path) -> _Sources:
    folder = data_dir / "datablist"
    organizations: dict[str, _Organization] = {}
    for row in _read_csv(folder / "organizations-10000.csv.gz"):
        founded = row["Founded"].strip()
        organizations.setdefault(
            row["Name"],
            _Organization(
                name=row["Name"],
                country=_DATABLIST_COUNTRY_NAMES.get(row["Country"]),
                industry=row["Industry"],
                employees=max(1, int(row["Number of employees"])),
                founded=int(founded) if founded.isdigit() else None,
            ),
        )
    first_names: list[str] = []
    last_names: list[str] = []
    titles: list[str] = []
    for row in _read_csv(folder / "people-10000.csv.gz"):
        first_names.append(row["First Name"])
        last_names.append(row["Last Name"])
        titles.append(_readable_title(row["Job Title"]))
    for row in _read_csv(folder / "customers-10000.csv.gz"):
        first_names.append(row["First Name"])
        last_names.append(row["Last Name"])
    return _Sources(tuple(organizations.values()), tuple(first_names), tuple(last_names), tuple(titles))


def _readable_title(title: str) -> str:
    """Datablist writes titles index-style ("Engineer, mining"); people write "Mining Engineer"."""
    head, _, qualifier = title.partition(", ")
    return f"{qualifier[:1].upper()}{qualifier[1:]} {head}" if qualifier else title


def _apportion(shares: Mapping[K, float], count: int, rng: random.Random) -> list[K]:
    """``count`` labels in exactly the given shares (largest remainder), shuffled.

    Drawing each label independently would let a 30-company world miss the 3% behaviours entirely;
    apportioning puts every behaviour in every world large enough to hold it, and keeps shares on target.
    """
    total = sum(shares.values())
    quotas = {key: share / total * count for key, share in shares.items()}
    counts = {key: math.floor(quota) for key, quota in quotas.items()}
    by_remainder = sorted(quotas, key=lambda key: quotas[key] - counts[key], reverse=True)
    for key in by_remainder[: count - sum(counts.values())]:
        counts[key] += 1
    labels = [key for key, n in counts.items() for _ in range(n)]
    rng.shuffle(labels)
    return labels


def _weighted(options: Mapping[K, float], rng: random.Random) -> K:
    return rng.choices(list(options), weights=list(options.values()))[0]


def generate_world(companies: int, people: int, seed: int, data_dir: Path | None = None) -> World:
    """A world of ``companies`` companies employing ``people`` people in total, the same for the same seed.

    ``data_dir`` is a copy of ``shared/data`` (default: ``default_data_dir()``). Every company gets at least
    one person while people last, and no company more people than its employee count.
    """
    if companies < 1 or people < 0:
        raise ValueError(f"expected companies >= 1 and people >= 0, found companies={companies}, people={people}")
    sources = _load_sources(data_dir or default_data_dir())
    if companies > len(sources.organizations):
        raise ValueError(
            f"expected at most {len(sources.organizations)} companies (distinct organization names in the"
            f" sample data), found {companies}; generate fewer companies"
        )
    rng = random.Random(seed)
    organizations = rng.sample(sources.organizations, companies)
    behaviours = _apportion(MX_SHARES, companies, rng)
    primary_patterns = _apportion(PATTERN_SHARES, companies, rng)
    domains: set[str] = set()
    company_list = [
        _make_company(org, behaviour, pattern, domains, rng)
        for org, behaviour, pattern in zip(organizations, behaviours, primary_patterns, strict=True)
    ]
    headcounts = _headcounts([min(org.employees, people) for org in organizations], people, rng)
    roles = _roles(people, sum(1 for n in headcounts if n), rng)
    builder = _PeopleBuilder(sources, rng)
    person_list: list[Person] = []
    for company, headcount in zip(company_list, headcounts, strict=True):
        for k in range(headcount):
            seniority = "c_suite" if k == 0 else roles.pop()
            person_list.append(builder.person(f"p{len(person_list) + 1:06d}", company, seniority, ceo=k == 0))
    return World(companies=tuple(company_list), people=tuple(person_list), seed=seed)


def _roles(people: int, ceos: int, rng: random.Random) -> list[str]:
    """Seniorities for everyone but the CEOs, in the target shares over all ``people`` where possible.

    Each staffed company has a CEO (a c_suite role); the CEOs are taken out of the c_suite quota, so only
    worlds with more companies than 4% of their people end up with more c_suite than the target share.
    """
    roles = _apportion(SENIORITY_SHARES, people, rng)
    for _ in range(ceos):
        roles.remove("c_suite" if "c_suite" in roles else roles[-1])
    return roles


def _headcounts(capacities: list[int], people: int, rng: random.Random) -> list[int]:
    """People per company: one each first, the rest weighted by sqrt(size), never above a company's size."""
    if people > sum(capacities):
        raise ValueError(
            f"expected at most {sum(capacities)} people (the employees of the drawn companies),"
            f" found {people}; generate more companies or fewer people"
        )
    counts = [0] * len(capacities)
    for i in range(min(people, len(capacities))):
        counts[i] = 1
    weights = [math.sqrt(c) for c in capacities]
    remaining = people - sum(counts)
    while remaining:
        for i in rng.choices(range(len(capacities)), weights=weights, k=remaining):
            if counts[i] < capacities[i] and remaining:
                counts[i] += 1
                remaining -= 1
        weights = [w if counts[i] < capacities[i] else 0.0 for i, w in enumerate(weights)]
    return counts


def _domain_labels(name: str) -> list[str]:
    """Label candidates the way companies pick them: the whole name when short, else its first words or
    initials ("Parrish, Osborne and Clarke" -> parrishosborne, parrish-osborne, parrish, poc)."""
    words = re.split(r"[\s,\-&/.']+", name)
    tokens = [t for t in (email_name(w) for w in words) if t and t not in LEGAL_SUFFIXES] or ["company"]
    if len(tokens) > 2:
        tokens = [t for t in tokens if t != "and"]
    whole = "".join(tokens)
    short = whole if len(whole) <= 16 else "".join(tokens[:2])
    labels = [
        short,
        "-".join(tokens[:2]),
        tokens[0],
        "".join(t[0] for t in tokens) if len(tokens) > 2 else whole,
    ]
    return list(dict.fromkeys(labels))


def _make_domain(name: str, country: str, taken: set[str], rng: random.Random) -> str:
    labels = _domain_labels(name)
    first = rng.choices(range(len(labels)), weights=[0.7, 0.15, 0.1, 0.05][: len(labels)])[0]
    tlds = COUNTRIES[country].tlds
    candidates = [f"{label}.{tld}" for label in [labels[first], *labels] for tld in [_weighted(tlds, rng), *tlds]]
    candidates += [f"{labels[0]}{suffix}.{tld}" for suffix in ("hq", "group", "global") for tld in tlds]
    for domain in candidates:
        if domain not in taken and len(domain) <= 63:
            taken.add(domain)
            return domain
    number = 2
    while f"{labels[0]}{number}.com" in taken:
        number += 1
    taken.add(f"{labels[0]}{number}.com")
    return f"{labels[0]}{number}.com"


def _make_company(
    org: _Organization, behaviour: MxBehaviour, pattern: str, taken: set[str], rng: random.Random
) -> Company:
    country = org.country or _weighted({code: p.weight for code, p in COUNTRIES.items()}, rng)
    domain = _make_domain(org.name, country, taken, rng)
    label = domain.split(".")[0]
    suite = "Google Workspace" if rng.random() < 0.55 else "Microsoft 365"
    technologies = (suite, *rng.sample(TECHNOLOGIES, rng.randint(2, 6)))
    mx_hosts: tuple[str, ...] = ()
    if behaviour != "no_mx":
        if suite == "Microsoft 365":
            mx_hosts = (f"{domain.replace('.', '-')}.mail.protection.outlook.com",)
        else:
            mx_hosts = (f"mx1.{domain}", f"mx2.{domain}")[: rng.choice((1, 2))]
    patterns: tuple[EmailPattern, ...] = (EmailPattern(pattern, 1.0),)
    if rng.random() < SECOND_PATTERN_SHARE:
        second = _weighted({p: s for p, s in PATTERN_SHARES.items() if p != pattern}, rng)
        main = round(rng.uniform(0.6, 0.9), 2)
        patterns = (EmailPattern(pattern, main), EmailPattern(second, round(1.0 - main, 2)))
    stripped = " ".join(w for w in org.name.split() if w.lower().strip(".,") not in LEGAL_SUFFIXES)
    return Company(
        name=org.name,
        domain=domain,
        aliases=(stripped,) if stripped and stripped != org.name else (),
        industry=org.industry,
        employee_count=org.employees,
        annual_revenue=round(org.employees * rng.lognormvariate(math.log(160_000), 0.5), -3),
        technologies=technologies,
        linkedin_url=f"https://www.linkedin.com/company/{label}" if rng.random() < 0.9 else None,
        twitter_url=f"https://x.com/{label.replace('-', '')}" if rng.random() < 0.55 else None,
        facebook_url=f"https://www.facebook.com/{label}" if rng.random() < 0.4 else None,
        hq_city=rng.choice(COUNTRIES[country].cities),
        hq_country=country,
        mx_hosts=mx_hosts,
        mx_behaviour=behaviour,
        email_patterns=patterns,
        founded=org.founded,
    )


class _PeopleBuilder:
    """Draws people one at a time, remembering what must stay unique (emails, phones, profile URLs, names)."""

    def __init__(self, sources: _Sources, rng: random.Random) -> None:
        self._sources = sources
        self._rng = rng
        self._emails: set[str] = set()
        self._phones: set[str] = set()
        self._slugs: set[str] = set()
        self._names: set[tuple[str, str, str]] = set()
        self._countries = {code: p.weight for code, p in COUNTRIES.items()}

    def person(self, person_id: str, company: Company, seniority: str, *, ceo: bool) -> Person:
        rng = self._rng
        first, last = self._name(company.domain)
        department = "executive" if ceo else _weighted({k: w for k, (_, w) in DEPARTMENTS.items()}, rng)
        title = "Chief Executive Officer" if ceo else self._title(seniority, department)
        if department != "executive" and seniority in ("senior", "entry"):
            department = _department_of(title)
        country = company.hq_country or "US"
        if rng.random() < 0.15:
            country = _weighted(self._countries, rng)
        email, exception = self._email(first, last, company)
        return Person(
            id=person_id,
            first_name=first,
            last_name=last,
            company_domain=company.domain,
            title=title,
            seniority=seniority,
            department=department,
            email=email,
            email_exception=exception,
            phones=self._phones_for(country),
            linkedin=self._linkedin(first, last, title, company, country) if rng.random() < 0.85 else None,
            country=country,
        )

    def _name(self, domain: str) -> tuple[str, str]:
        """A name not yet used at this company, so ``World.find_person`` stays unambiguous."""
        while True:
            first = self._rng.choice(self._sources.first_names)
            last = self._rng.choice(self._sources.last_names)
            if (domain, first, last) not in self._names and email_name(first) and email_name(last):
                self._names.add((domain, first, last))
                return first, last

    def _title(self, seniority: str, department: str) -> str:
        label = DEPARTMENTS[department][0]
        if seniority == "c_suite":
            return CHIEF_TITLES[department]
        if seniority == "vp":
            return self._rng.choice((f"VP of {label}", f"Vice President, {label}", f"VP {label}"))
        if seniority == "director":
            return self._rng.choice((f"Director of {label}", f"{label} Director"))
        if seniority == "manager":
            return self._rng.choice((f"{label} Manager", f"Head of {label}"))
        base = self._rng.choice(self._sources.titles)
        return f"Senior {base}" if seniority == "senior" else base

    def _email(self, first: str, last: str, company: Company) -> tuple[str, bool]:
        rng = self._rng
        patterns = company.email_patterns
        pattern = rng.choices(patterns, weights=[p.share for p in patterns])[0]
        local = pattern.local_part(first, last)
        if rng.random() < EXCEPTION_EMAIL_SHARE:
            f, la = email_name(first), email_name(last)
            local = rng.choice((f"{f}{rng.randint(1, 99)}", f"{f[:3]}{la[:3]}", f"{f}.{la[:1]}", f"{la}{f}"))
        number = 2
        candidate = local
        while f"{candidate}@{company.domain}" in self._emails:
            candidate = f"{local}{number}"
            number += 1
        self._emails.add(f"{candidate}@{company.domain}")
        exception = candidate not in {p.local_part(first, last) for p in patterns}
        return f"{candidate}@{company.domain}", exception

    def _phones_for(self, country: str) -> tuple[Phone, ...]:
        rng = self._rng
        phones = []
        if rng.random() < 0.75:
            phones.append(self._phone(country, "mobile", "mobile"))
        if rng.random() < 0.35:
            phones.append(self._phone(country, "landline", "landline"))
        if rng.random() < 0.08:
            phones.append(self._phone(country, "voip", rng.choice(("fixedVoip", "nonFixedVoip"))))
        return tuple(phones)

    def _phone(self, region: str, kind: str, line_type: LineType) -> Phone:
        """A number valid for ``region`` and of the asked type, built by varying the digits of the metadata's
        example number and keeping what ``phonenumbers`` validates (its ranges are the real numbering plan).
        """
        wanted, accepted = _PHONE_TYPES[kind]
        example = phonenumbers.example_number_for_type(region, wanted)
        if example is None:  # no separate VoIP range here: VoIP lines get ordinary geographic numbers
            wanted, accepted = _PHONE_TYPES["landline"]
            example = phonenumbers.example_number_for_type(region, wanted)
        if example is None:
            raise ValueError(f"phonenumbers has no example {kind} number for region {region!r}")
        national = phonenumbers.national_significant_number(example)
        prefix = f"+{example.country_code}"
        for attempt in range(500):
            # Free digits first (the whole numbering plan), then keep more of the example's leading digits
            # for plans whose valid ranges are sparse (German and Brazilian mobiles).
            keep = 0 if attempt < 20 else 1 if attempt < 60 else 2 if attempt < 200 else 3
            digits = national[:keep] + "".join(str(self._rng.randrange(10)) for _ in national[keep:])
            number = phonenumbers.parse(prefix + digits)
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            # a leading 0 (a trunk prefix) parses to other digits: keep only numbers that are what they say
            valid = e164 == prefix + digits and e164 not in self._phones
            valid = valid and phonenumbers.is_valid_number_for_region(number, region)
            if valid and phonenumbers.number_type(number) in accepted:
                self._phones.add(e164)
                name = carrier.name_for_number(number, "en") if kind == "mobile" else ""
                return Phone(number=e164, line_type=line_type, carrier=name or None)
        raise RuntimeError(f"no unused valid {kind} number found for {region} after 500 draws")

    def _linkedin(self, first: str, last: str, title: str, company: Company, country: str) -> LinkedInProfile:
        rng = self._rng
        slug = f"{email_name(first)}-{email_name(last)}"
        while slug in self._slugs:
            slug = f"{email_name(first)}-{email_name(last)}-{rng.getrandbits(32):08x}"
        self._slugs.add(slug)
        start_year = AS_OF_YEAR - rng.randint(0, 8)
        experience = [Experience(title, company.name, f"{start_year}-{rng.randint(1, 12):02d}", None)]
        end_year = start_year
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
            begin = end_year - rng.randint(1, 6)
            employer = rng.choice(self._sources.organizations).name
            previous = rng.choice(self._sources.titles)
            experience.append(
                Experience(
                    previous,
                    employer,
                    f"{begin}-{rng.randint(1, 12):02d}",
                    f"{end_year}-{rng.randint(1, 12):02d}",
                )
            )
            end_year = begin
        token = "".join(
            rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") for _ in range(12)
        )
        return LinkedInProfile(
            url=f"https://www.linkedin.com/in/{slug}",
            headline=f"{title} at {company.name}" if rng.random() < 0.7 else title,
            location=f"{rng.choice(COUNTRIES[country].cities)}, {COUNTRIES[country].name}",
            photo_url=(
                f"https://media.licdn.com/dms/image/v2/{token}/profile-displayphoto-shrink_400_400/0/"
                if rng.random() < 0.75
                else None
            ),
            connection_degree=rng.choices((1, 2, 3, None), weights=(0.05, 0.35, 0.40, 0.20))[0],
            experience=tuple(experience),
        )


def _department_of(title: str) -> str:
    lowered = f"{title.lower()} "
    for department, keywords in DEPARTMENT_KEYWORDS:
        if any(keyword in lowered for keyword in keywords):
            return department
    return "operations"


def write_leads_csv(
    world: World,
    out_csv: Path,
    truth_json: Path,
    fraction_missing: Mapping[str, float],
    seed: int,
) -> int:
    """Write every person of ``world`` as a lead row, blanking fields at the given fractions; return the rows.

    The CSV looks like a real export: mixed phone and website formats, some LinkedIn URLs without the scheme.
    ``truth_json`` maps each data row (1-based, header not counted) to the person id, the fields blanked and
    the true values, which is what discovery is measured against.
    """
    unknown = sorted(set(fraction_missing) - set(LEAD_FIELDS))
    if unknown:
        raise ValueError(f"fraction_missing: unknown field {unknown[0]!r}; expected some of {list(LEAD_FIELDS)}")
    for field, fraction in fraction_missing.items():
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction_missing[{field!r}]: expected a number from 0 to 1, found {fraction}")
    rng = random.Random(seed)
    people = list(world.people)
    rng.shuffle(people)
    blanked = {
        field: set(rng.sample(range(len(people)), round(fraction * len(people))))
        for field, fraction in fraction_missing.items()
    }
    truth_rows = []
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LEAD_COLUMNS)
        for index, person in enumerate(people):
            company = world.company(person.company_domain)
            assert company is not None  # World.validate guarantees it
            true = _true_values(person, company)
            shown = _shown_values(person, company, rng)
            gone = sorted(field for field, rows in blanked.items() if index in rows and shown[field])
            for field in gone:
                shown[field] = ""
            writer.writerow(
                [
                    person.first_name,
                    person.last_name,
                    shown["company"],
                    shown["title"],
                    shown["email"],
                    shown["phone"],
                    shown["linkedin"],
                    shown["website"],
                    shown["country"],
                ]
            )
            truth_rows.append({"row": index + 1, "person_id": person.id, "blanked": gone, "true": true})
    truth = {
        "format": "leads_pipeline.sandbox.truth",
        "version": 1,
        "world_seed": world.seed,
        "seed": seed,
        "csv": out_csv.name,
        "fraction_missing": dict(fraction_missing),
        "rows": truth_rows,
    }
    truth_json.parent.mkdir(parents=True, exist_ok=True)
    truth_json.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return len(people)


def _true_values(person: Person, company: Company) -> dict[str, str | None]:
    phone = person.phones[0] if person.phones else None
    return {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "company": company.name,
        "company_domain": company.domain,
        "title": person.title,
        "email": person.email,
        "phone": phone.number if phone else None,
        "phone_line_type": phone.line_type if phone else None,
        "linkedin": person.linkedin.url if person.linkedin else None,
        "website": f"https://{company.domain}",
        "country": person.country,
    }


def _shown_values(person: Person, company: Company, rng: random.Random) -> dict[str, str]:
    """The values as a user's file would carry them: same facts, the formats people actually type."""
    phone = ""
    if person.phones:
        number = phonenumbers.parse(person.phones[0].number)
        style = rng.choices(
            (PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL, PhoneNumberFormat.E164),
            weights=(0.4, 0.3, 0.3),
        )[0]
        phone = phonenumbers.format_number(number, style)
    linkedin = ""
    if person.linkedin:
        url = person.linkedin.url
        linkedin = url if rng.random() < 0.7 else url.removeprefix("https://www.")
    website = rng.choice(
        (
            f"https://www.{company.domain}",
            f"www.{company.domain}",
            company.domain,
            f"http://{company.domain}/",
        )
    )
    name = company.aliases[0] if company.aliases and rng.random() < 0.1 else company.name
    country = COUNTRIES[person.country].name if person.country in COUNTRIES else (person.country or "")
    return {
        "company": name,
        "title": person.title or "",
        "email": person.email or "",
        "phone": phone,
        "linkedin": linkedin,
        "website": website,
        "country": country,
    }


def parse_fractions(text: str) -> dict[str, float]:
    """``"email=0.5,phone=0.6"`` -> ``{"email": 0.5, "phone": 0.6}``, with errors that show the bad item."""
    fractions: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        field, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            fractions[field.strip()] = float(value)
        except ValueError:
            raise ValueError(f"expected FIELD=FRACTION items like 'email=0.5,phone=0.6', found {item!r}") from None
    return fractions
