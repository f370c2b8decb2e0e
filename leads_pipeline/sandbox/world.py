"""The sandbox world: the ground truth that every emulator answers from.

A world is a set of companies and the people who work there. Emulators (Apify actors, Gemini, verifiers,
Twilio, DNS, SMTP) only ever report facts that are in the world, so discovery rates and accuracy measured
against the sandbox are measured against a known truth. A world is stored as one JSON document:
``{"format": "leads_pipeline.sandbox.world", "version": 1, "seed": ..., "companies": [...], "people": [...]}``
whose objects carry the dataclass fields below by name (tuples as arrays). ``load_world`` checks every key and
type and then ``World.validate()``, so a hand-edited file fails with the path and key of the first problem.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import types
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from leads_pipeline.lib.errors import InputFileError, PermanentError

WORLD_FORMAT = "leads_pipeline.sandbox.world"
WORLD_VERSION = 1
SENIORITIES = ("c_suite", "vp", "director", "manager", "senior", "entry")
PATTERN_FIELDS = frozenset({"first", "last", "f", "l"})
"""Placeholders an ``EmailPattern.pattern`` may use: full first/last name and their initials."""

MxBehaviour = Literal["accepts", "strict", "catch_all", "greylist", "timeout", "no_mx"]
"""How a domain's mail hosts answer RCPT TO.

accepts: every address at the domain is accepted (like ``catch_all``, but the random-address probe is the
only way to tell them apart); strict: known mailboxes 250, unknown 550; catch_all: everything 250; greylist:
first attempt from a client 451, later attempts as strict; timeout: the host never answers; no_mx: the domain
has no MX record (mail goes to the A record, which answers as strict).
"""

LineType = Literal["mobile", "landline", "fixedVoip", "nonFixedVoip", "tollFree", "unknown"]


@dataclass(frozen=True)
class EmailPattern:
    """One local-part pattern of a domain and its share of the domain's mailboxes (shares sum to 1)."""

    pattern: str  # e.g. "{first}.{last}", "{f}{last}", "{first}", "{first}{l}", "{first}_{last}", "{last}{f}"
    share: float

    def local_part(self, first_name: str, last_name: str) -> str:
        """The local part this pattern gives a name: ``{f}{last}`` with "José", "Smith" -> "jsmith"."""
        first, last = email_name(first_name), email_name(last_name)
        return self.pattern.format(first=first, last=last, f=first[:1], l=last[:1])


def email_name(name: str) -> str:
    """A name as mailboxes spell it: accents folded, lower case, letters and digits only (O'Brien: obrien)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


@dataclass(frozen=True)
class Company:
    name: str
    domain: str
    aliases: tuple[str, ...] = ()
    industry: str | None = None
    employee_count: int | None = None
    annual_revenue: float | None = None
    technologies: tuple[str, ...] = ()
    linkedin_url: str | None = None
    twitter_url: str | None = None
    facebook_url: str | None = None
    hq_city: str | None = None
    hq_country: str | None = None  # ISO 3166 alpha-2
    mx_hosts: tuple[str, ...] = ()  # host names, e.g. "mx1.acme.com"; empty with behaviour "no_mx"
    mx_behaviour: MxBehaviour = "strict"
    email_patterns: tuple[EmailPattern, ...] = ()
    founded: int | None = None


@dataclass(frozen=True)
class Phone:
    number: str  # E.164
    line_type: LineType
    carrier: str | None = None


@dataclass(frozen=True)
class Experience:
    title: str
    company: str
    start: str | None = None  # "YYYY-MM"
    end: str | None = None  # None = current


@dataclass(frozen=True)
class LinkedInProfile:
    url: str  # canonical https://www.linkedin.com/in/<slug>
    headline: str
    location: str | None
    photo_url: str | None
    connection_degree: int | None  # 1, 2, 3 or None (out of network)
    experience: tuple[Experience, ...] = ()


@dataclass(frozen=True)
class Person:
    id: str
    first_name: str
    last_name: str
    company_domain: str
    title: str | None = None
    seniority: str | None = None
    department: str | None = None
    email: str | None = None  # follows the company pattern unless it is an exception
    email_exception: bool = False  # True: the local part follows none of the company's patterns
    phones: tuple[Phone, ...] = ()
    linkedin: LinkedInProfile | None = None
    country: str | None = None  # ISO 3166 alpha-2


@dataclass(frozen=True)
class World:
    companies: tuple[Company, ...]
    people: tuple[Person, ...]
    seed: int | None = None
    version: int = 1

    @functools.cached_property
    def _companies_by_domain(self) -> dict[str, Company]:
        return {c.domain.casefold(): c for c in self.companies}

    @functools.cached_property
    def _people_by_email(self) -> dict[str, Person]:
        return {p.email.casefold(): p for p in self.people if p.email}

    @functools.cached_property
    def _people_by_phone(self) -> dict[str, Person]:
        return {ph.number: p for p in self.people for ph in p.phones}

    @functools.cached_property
    def _people_by_linkedin(self) -> dict[str, Person]:
        return {p.linkedin.url.casefold().rstrip("/"): p for p in self.people if p.linkedin}

    @functools.cached_property
    def _people_by_domain(self) -> dict[str, list[Person]]:
        index: dict[str, list[Person]] = {}
        for person in self.people:
            index.setdefault(person.company_domain.casefold(), []).append(person)
        return index

    def company(self, domain: str) -> Company | None:
        """The company owning ``domain`` (case-insensitive), or None."""
        return self._companies_by_domain.get(domain.casefold())

    def people_at(self, domain: str) -> list[Person]:
        """Everyone working at the company with ``domain``."""
        return list(self._people_by_domain.get(domain.casefold(), ()))

    def person_by_email(self, email: str) -> Person | None:
        return self._people_by_email.get(email.casefold())

    def person_by_phone(self, e164: str) -> Person | None:
        return self._people_by_phone.get(e164)

    def person_by_linkedin(self, url: str) -> Person | None:
        return self._people_by_linkedin.get(url.casefold().rstrip("/"))

    def find_person(self, first_name: str, last_name: str, domain: str) -> Person | None:
        """The person with this name at the company with ``domain`` (case-insensitive), or None."""
        first, last = first_name.casefold(), last_name.casefold()
        for person in self._people_by_domain.get(domain.casefold(), ()):
            if person.first_name.casefold() == first and person.last_name.casefold() == last:
                return person
        return None

    def find_company(self, name_or_domain: str) -> Company | None:
        """A company by domain, name or alias (case-insensitive), or None."""
        key = name_or_domain.casefold().strip()
        if found := self.company(key):
            return found
        for company in self.companies:
            if key == company.name.casefold() or key in (a.casefold() for a in company.aliases):
                return company
        return None

    def validate(self) -> None:
        """Check the cross-record rules the emulators rely on; raise ``WorldValidationError`` listing them.

        Types are checked on load; these are the facts a type cannot say: unique keys (the lookups are dicts
        and would silently keep the last duplicate), people pointing at known companies, MX hosts present
        exactly when the behaviour needs them, pattern shares summing to 1.
        """
        problems: list[str] = []
        domains: dict[str, int] = {}
        host_behaviour: dict[str, str] = {}
        for i, company in enumerate(self.companies):
            where = f"companies[{i}]"
            domain = company.domain
            if domain != domain.lower() or "." not in domain or domain.startswith(".") or domain.endswith("."):
                problems.append(f"{where}.domain: expected a lower-case name like 'acme.com', found {domain!r}")
            if domain in domains:
                problems.append(f"{where}.domain: {domain!r} is already used by companies[{domains[domain]}]")
            domains[domain] = i
            if (company.mx_behaviour == "no_mx") != (not company.mx_hosts):
                problems.append(
                    f"{where}.mx_hosts: behaviour {company.mx_behaviour!r} needs "
                    + ("no MX hosts" if company.mx_behaviour == "no_mx" else "at least one MX host")
                    + f", found {list(company.mx_hosts)}"
                )
            for host in company.mx_hosts:
                other = host_behaviour.setdefault(host.lower(), company.mx_behaviour)
                if other != company.mx_behaviour:
                    problems.append(
                        f"{where}.mx_hosts: {host!r} serves both {other!r} and {company.mx_behaviour!r};"
                        " a mail host has one behaviour: give each company its own host names"
                    )
            problems.extend(_pattern_problems(company.email_patterns, f"{where}.email_patterns"))
        ids: dict[str, int] = {}
        emails: dict[str, int] = {}
        phones: dict[str, int] = {}
        profiles: dict[str, int] = {}
        for i, person in enumerate(self.people):
            where = f"people[{i}]"
            if person.id in ids:
                problems.append(f"{where}.id: {person.id!r} is already used by people[{ids[person.id]}]")
            ids[person.id] = i
            if person.company_domain.casefold() not in self._companies_by_domain:
                problems.append(f"{where}.company_domain: {person.company_domain!r} is no company's domain")
            if person.seniority is not None and person.seniority not in SENIORITIES:
                problems.append(f"{where}.seniority: expected one of {SENIORITIES}, found {person.seniority!r}")
            if person.email is not None:
                if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", person.email):
                    problems.append(f"{where}.email: expected local@domain, found {person.email!r}")
                _check_unique(person.email.casefold(), i, emails, f"{where}.email", problems)
            for j, phone in enumerate(person.phones):
                if not re.fullmatch(r"\+[1-9][0-9]{6,14}", phone.number):
                    problems.append(f"{where}.phones[{j}].number: expected E.164 '+<digits>', found {phone.number!r}")
                _check_unique(phone.number, i, phones, f"{where}.phones[{j}].number", problems)
            if person.linkedin is not None:
                url = person.linkedin.url
                if not url.startswith("https://www.linkedin.com/in/"):
                    problems.append(f"{where}.linkedin.url: expected https://www.linkedin.com/in/<slug>, found {url!r}")
                _check_unique(url.casefold().rstrip("/"), i, profiles, f"{where}.linkedin.url", problems)
        if problems:
            raise WorldValidationError(problems)


def _check_unique(key: str, index: int, seen: dict[str, int], where: str, problems: list[str]) -> None:
    if key in seen and seen[key] != index:
        problems.append(f"{where}: {key!r} is already used by people[{seen[key]}]")
    seen.setdefault(key, index)


def _pattern_problems(patterns: tuple[EmailPattern, ...], where: str) -> list[str]:
    problems = []
    for k, pattern in enumerate(patterns):
        names = set(re.findall(r"{(\w*)}", pattern.pattern))
        if not names or not names <= PATTERN_FIELDS:
            problems.append(
                f"{where}[{k}].pattern: expected placeholders from {sorted(PATTERN_FIELDS)}"
                f" like '{{first}}.{{last}}', found {pattern.pattern!r}"
            )
    if patterns and abs(sum(p.share for p in patterns) - 1.0) > 1e-6:
        problems.append(f"{where}: shares must sum to 1, found {sum(p.share for p in patterns):.4f}")
    return problems


class WorldValidationError(PermanentError):
    """A world breaks cross-record rules; ``problems`` lists each one as "key: what is wrong"."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        super().__init__(f"invalid world ({len(problems)} problems): {shown}")


class WorldFileError(InputFileError):
    """A world file cannot be loaded; the message names the file, the key and the fix."""


_REGENERATE = "fix the file or write a new one with `leads sandbox world generate`"


def save_world(world: World, path: str | os.PathLike[str]) -> Path:
    """Write ``world`` as one JSON document (atomically: readers never see half a file); return the path."""
    target = Path(path)
    document = {"format": WORLD_FORMAT, **dataclasses.asdict(world)}
    document["version"] = WORLD_VERSION
    temporary = target.with_name(target.name + ".tmp")
    try:
        temporary.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        temporary.replace(target)
    finally:  # a target that cannot be replaced (a directory) left the whole world beside it as OUT.tmp
        temporary.unlink(missing_ok=True)
    return target


def load_world(path: str | os.PathLike[str]) -> World:
    """Read and validate a world file written by ``save_world`` (or by hand).

    Raises ``WorldFileError`` naming the path and the key (``people[12].phones[0].line_type``) of the first
    malformed value, or the list of cross-record problems found by ``World.validate()``.
    """
    source = Path(path)
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise WorldFileError(source, f"cannot read the world file ({error.strerror}); check the path") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WorldFileError(source, f"not a JSON document ({error}); {_REGENERATE}") from error
    if not isinstance(document, dict) or document.get("format") != WORLD_FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise WorldFileError(source, f"format: expected {WORLD_FORMAT!r}, found {found!r}; is this a world file?")
    if document.get("version") != WORLD_VERSION:
        raise WorldFileError(
            source,
            f"version: expected {WORLD_VERSION}, found {document.get('version')!r}; "
            "a newer leads_pipeline wrote it: upgrade, or regenerate the world with this version",
        )
    known = sorted({"format", *(f.name for f in dataclasses.fields(World))})
    unknown = sorted(set(document) - set(known))
    if unknown:  # the body's decoder, which never sees format, named every known key but that one
        raise WorldFileError(source, f"{unknown[0]}: unknown key for World; known keys: {known}; {_REGENERATE}")
    body = {key: value for key, value in document.items() if key != "format"}
    try:
        world = _decode(body, World, "")
        world.validate()
    except _DecodeError as error:
        raise WorldFileError(source, f"{error.where}: {error.problem}; {_REGENERATE}") from error
    except WorldValidationError as error:
        raise WorldFileError(source, f"{error}; {_REGENERATE}") from error
    return world


class _DecodeError(Exception):
    def __init__(self, where: str, problem: str) -> None:
        self.where = where or "(document)"
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


def _decode(value: Any, hint: Any, where: str) -> Any:
    """Turn parsed JSON into ``hint`` (dataclass, Literal, optional, tuple or scalar), checking as it goes."""
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _decode_dataclass(value, hint, where)
    if origin is Literal:
        if value not in get_args(hint):
            raise _DecodeError(where, f"expected one of {list(get_args(hint))}, found {value!r}")
        return value
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(hint) if arg is not type(None)]
        if value is None and len(options) < len(get_args(hint)):
            return None
        return _decode(value, options[0], where)
    if origin is tuple:
        if not isinstance(value, list):
            raise _DecodeError(where, f"expected a JSON array, found {_json_type(value)}")
        item = get_args(hint)[0]
        return tuple(_decode(element, item, f"{where}[{i}]") for i, element in enumerate(value))
    expected = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[hint]
    ok = isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise _DecodeError(where, f"expected {expected}, found {_json_type(value)} {value!r}")
    return value


def _decode_dataclass(value: Any, cls: type, where: str) -> Any:
    if not isinstance(value, dict):
        raise _DecodeError(where, f"expected a JSON object ({cls.__name__}), found {_json_type(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _type_hints(cls)
    prefix = f"{where}." if where else ""
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise _DecodeError(f"{prefix}{unknown[0]}", f"unknown key for {cls.__name__}; known keys: {sorted(fields)}")
    arguments = {}
    for name, field in fields.items():
        if name not in value:
            required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            if required:
                raise _DecodeError(f"{prefix}{name}", f"missing required key of {cls.__name__}")
            continue
        arguments[name] = _decode(value[name], hints[name], f"{prefix}{name}")
    return cls(**arguments)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """Resolved field types, computed once per class: resolving them per record made loads 10x slower."""
    return get_type_hints(cls)


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
