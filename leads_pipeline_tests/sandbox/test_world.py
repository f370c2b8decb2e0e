"""The world generator, the world file format and the lead files drawn from a world."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from leads_pipeline.sandbox.generate import (
    MX_SHARES,
    PATTERN_SHARES,
    generate_world,
    parse_fractions,
    write_leads_csv,
)
from leads_pipeline.sandbox.world import (
    Company,
    World,
    WorldFileError,
    WorldValidationError,
    load_world,
    save_world,
)

ACCEPTED_TYPES = {
    "mobile": {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
    "landline": {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
    "fixedVoip": {PhoneNumberType.VOIP, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
    "nonFixedVoip": {PhoneNumberType.VOIP, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE},
}


@pytest.fixture(scope="module")
def large_world() -> World:
    """Big enough for shares to be measurable (200 companies, 1,500 people), small enough to take ~0.5 s."""
    return generate_world(200, 1500, seed=11)


def test_same_seed_gives_identical_json(tmp_path: Path) -> None:
    first = save_world(generate_world(20, 120, seed=3), tmp_path / "a.json")
    second = save_world(generate_world(20, 120, seed=3), tmp_path / "b.json")
    assert first.read_bytes() == second.read_bytes()


def test_different_seed_gives_a_different_world() -> None:
    first, second = generate_world(20, 120, seed=3), generate_world(20, 120, seed=4)
    assert [c.domain for c in first.companies] != [c.domain for c in second.companies]
    assert [p.email for p in first.people] != [p.email for p in second.people]


def test_sizes_and_headcounts(large_world: World) -> None:
    assert len(large_world.companies) == 200
    assert len(large_world.people) == 1500
    for company in large_world.companies:
        staff = large_world.people_at(company.domain)
        assert 1 <= len(staff) <= (company.employee_count or 0)
        assert staff[0].title == "Chief Executive Officer"


def test_mx_behaviour_shares(large_world: World) -> None:
    counts = Counter(c.mx_behaviour for c in large_world.companies)
    for behaviour, share in MX_SHARES.items():
        assert counts[behaviour] / 200 == pytest.approx(share, abs=0.01), behaviour


def test_email_pattern_shares_and_second_patterns(large_world: World) -> None:
    primary = Counter(c.email_patterns[0].pattern for c in large_world.companies)
    for pattern, share in PATTERN_SHARES.items():
        assert primary[pattern] / 200 == pytest.approx(share, abs=0.01), pattern
    two = sum(len(c.email_patterns) == 2 for c in large_world.companies)
    assert 0.05 <= two / 200 <= 0.30
    for company in large_world.companies:
        assert sum(p.share for p in company.email_patterns) == pytest.approx(1.0)


def test_emails_follow_the_domain_patterns(large_world: World) -> None:
    exceptions = 0
    for person in large_world.people:
        company = large_world.company(person.company_domain)
        assert company is not None and person.email is not None
        local, _, domain = person.email.partition("@")
        assert domain == company.domain
        expected = {p.local_part(person.first_name, person.last_name) for p in company.email_patterns}
        assert (local not in expected) == person.email_exception, person
        exceptions += person.email_exception
    assert 0.01 <= exceptions / len(large_world.people) <= 0.07


def test_every_phone_is_valid_for_its_country_and_line_type(large_world: World) -> None:
    countries: Counter[str] = Counter()
    for person in large_world.people:
        assert person.country is not None
        for phone in person.phones:
            number = phonenumbers.parse(phone.number)
            assert phonenumbers.is_valid_number_for_region(number, person.country), (person.id, phone)
            assert phonenumbers.number_type(number) in ACCEPTED_TYPES[phone.line_type], (person.id, phone)
            assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == phone.number
            countries[person.country] += 1
    assert len(countries) >= 8
    assert sum(bool(p.phones) for p in large_world.people) / len(large_world.people) > 0.7


def test_seniority_and_profiles(large_world: World) -> None:
    seniority = Counter(p.seniority for p in large_world.people)
    assert set(seniority) == {"c_suite", "vp", "director", "manager", "senior", "entry"}
    assert seniority["entry"] > seniority["manager"] > seniority["vp"]
    with_profile = [p for p in large_world.people if p.linkedin]
    assert 0.75 <= len(with_profile) / len(large_world.people) <= 0.95
    for person in with_profile:
        assert person.linkedin is not None
        assert person.linkedin.url.startswith("https://www.linkedin.com/in/")
        assert person.linkedin.experience[0].end is None
        assert large_world.person_by_linkedin(person.linkedin.url.upper() + "/") == person
    assert all(c.annual_revenue and c.technologies for c in large_world.companies)


def test_save_and_load_round_trip(tmp_path: Path, sandbox_world: World) -> None:
    path = save_world(sandbox_world, tmp_path / "world.json")
    assert load_world(path) == sandbox_world


def _broken_world(tmp_path: Path, world: World, change: Any) -> Path:
    document = json.loads(save_world(world, tmp_path / "world.json").read_text())
    change(document)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("change", "key", "found"),
    [
        (lambda d: d["companies"][2].update(mx_behaviour="bouncy"), "companies[2].mx_behaviour", "'bouncy'"),
        (lambda d: d["people"][5]["phones"].append({"number": 44}), "people[5].phones", "integer"),
        (lambda d: d["people"][1].pop("first_name"), "people[1].first_name", "missing"),
        (lambda d: d["companies"][0].update(ceo="x"), "companies[0].ceo", "unknown key"),
        (lambda d: d["companies"][1].update(email_patterns={}), "companies[1].email_patterns", "object"),
        (lambda d: d.update(version=99), "version", "99"),
        # the known keys named every one but format, which the file must have
        (lambda d: d.update(owner="x"), "owner", "known keys: ['companies', 'format', 'people', 'seed', 'version']"),
        (
            lambda d: d["people"][3].update(company_domain="nowhere.test"),
            "people[3].company_domain",
            "nowhere",
        ),
    ],
)
def test_malformed_world_file_names_path_and_key(
    tmp_path: Path, sandbox_world: World, change: Any, key: str, found: str
) -> None:
    path = _broken_world(tmp_path, sandbox_world, change)
    with pytest.raises(WorldFileError) as raised:
        load_world(path)
    message = str(raised.value)
    assert message.startswith(str(path))
    assert key in message and found in message


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(WorldFileError, match="not a JSON document"):
        load_world(garbage)
    with pytest.raises(WorldFileError, match="cannot read"):
        load_world(tmp_path / "missing.json")


def test_validate_lists_every_broken_rule(sandbox_world: World) -> None:
    first = sandbox_world.companies[0]
    twin = dataclasses.replace(sandbox_world.companies[1], domain=first.domain)
    silent = Company(name="Silent", domain="silent.test", mx_behaviour="strict")
    broken = World(companies=(first, twin, silent), people=sandbox_world.people[:2] * 2)
    with pytest.raises(WorldValidationError) as raised:
        broken.validate()
    problems = "\n".join(raised.value.problems)
    assert "companies[1].domain" in problems
    assert "companies[2].mx_hosts" in problems
    assert "people[2].id" in problems and "people[2].email" in problems


def test_leads_csv_blanks_fields_and_truth_matches(tmp_path: Path, sandbox_world: World) -> None:
    out, truth_path = tmp_path / "leads.csv", tmp_path / "truth.json"
    fractions = parse_fractions("email=0.5, phone=0.6,linkedin=0.5")
    rows = write_leads_csv(sandbox_world, out, truth_path, fractions, seed=1)
    with out.open(newline="", encoding="utf-8") as handle:
        leads = list(csv.DictReader(handle))
    truth = json.loads(truth_path.read_text())["rows"]
    assert rows == len(leads) == len(truth) == len(sandbox_world.people)
    assert sum(not lead["Email"] for lead in leads) == round(0.5 * rows)
    assert sum(not lead["Title"] for lead in leads) == 0
    for lead, fact in zip(leads, truth, strict=True):
        person = next(p for p in sandbox_world.people if p.id == fact["person_id"])
        assert (lead["First Name"], lead["Last Name"]) == (person.first_name, person.last_name)
        assert lead["Email"] in ("", person.email)
        assert ("email" in fact["blanked"]) == (lead["Email"] == "")
        if lead["Phone"]:
            assert (
                phonenumbers.format_number(
                    phonenumbers.parse(lead["Phone"], person.country), phonenumbers.PhoneNumberFormat.E164
                )
                == fact["true"]["phone"]
            )
        assert lead["Website"] == "" or person.company_domain in lead["Website"]


@pytest.mark.parametrize(
    ("fractions", "message"),
    [({"emails": 0.5}, "unknown field 'emails'"), ({"phone": 1.5}, "from 0 to 1")],
)
def test_leads_csv_rejects_bad_fractions(
    tmp_path: Path, sandbox_world: World, fractions: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_leads_csv(sandbox_world, tmp_path / "l.csv", tmp_path / "t.json", fractions, seed=1)


def test_parse_fractions_names_the_bad_item() -> None:
    assert parse_fractions("") == {}
    with pytest.raises(ValueError, match=r"'phone:0\.5'"):
        parse_fractions("email=0.5,phone:0.5")


def test_lookups(sandbox_world: World) -> None:
    person = sandbox_world.people[10]
    assert person.email is not None
    assert sandbox_world.person_by_email(person.email.upper()) == person
    assert sandbox_world.find_person(person.first_name.upper(), person.last_name, person.company_domain) == person
    if person.phones:
        assert sandbox_world.person_by_phone(person.phones[0].number) == person
    company = sandbox_world.companies[0]
    assert sandbox_world.find_company(company.name.lower()) == company
    assert sandbox_world.find_company("no such company") is None
