"""Pattern detection, learning and candidate generation, including diacritics, hyphens and particles."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.contacts.patterns import (
    PRIORS,
    PatternModel,
    detect_patterns,
    mailbox_name,
    name_variants,
    spellings,
)


@pytest.mark.parametrize(
    ("name", "spelled"),
    [
        ("José", "jose"),
        ("O'Brien", "obrien"),
        ("Zoë", "zoe"),
        ("Ångström", "angstrom"),
        ("Mary Ann", "maryann"),
        ("Groß", "gross"),  # NFKD had no ASCII for ß, ł or ø: gro, ukasz, rsted
        ("Łukasz", "lukasz"),
        ("Ørsted", "orsted"),
        ("Дмитрий", "dmitriy"),
        ("Παπαδόπουλος", "papadopoulos"),
        ("محمد", ""),  # Arabic writes no vowels: no guess
        ("김민준", ""),  # the revised romanization is not the mailboxes' (gim, not kim)
    ],
)
def test_mailbox_names_fold_accents_and_drop_punctuation(name: str, spelled: str) -> None:
    assert mailbox_name(name) == spelled


@pytest.mark.parametrize(
    ("first", "last", "domain", "expected"),
    [
        ("Jane", "Doe", "acme.com", [("Jane", "Doe")]),
        ("Jörg", "Müller", "acme.com", [("Jorg", "Muller"), ("Joerg", "Mueller")]),
        ("Jörg", "Müller", "acme.de", [("Joerg", "Mueller"), ("Jorg", "Muller")]),  # spelled out first in German
        ("Дмитрий", "Иванов", "acme.ru", [("Dmitry", "Ivanov"), ("Dmitriy", "Ivanov")]),
        ("Юрий", "Достоевский", "", [("Yury", "Dostoevsky"), ("Yuriy", "Dostoevskiy")]),
        ("伟", "王", "acme.com", [("Wei", "Wang")]),
        ("小明", "欧阳", "acme.cn", [("XiaoMing", "OuYang")]),
        ("娜娜", "欧阳", "acme.com", [("NaNa", "OuYang")]),  # a compound Chinese family name
        ("伟", "王", "acme.jp", []),  # Japan reads the characters otherwise
        ("花子", "山田", "acme.com", []),  # a two-character family name is most likely Japanese
        ("はなこ", "山", "acme.com", []),
        ("민준", "김", "acme.com", []),
    ],
)
def test_spellings_of_names_beyond_ascii(first: str, last: str, domain: str, expected: list[tuple[str, str]]) -> None:
    assert spellings(first, last, domain) == expected


def test_variants_cover_hyphens_particles_umlauts_and_nicknames() -> None:
    assert {"jeanpierre", "jean-pierre", "jean"} <= set(name_variants("Jean-Pierre"))
    assert {"vanderberg", "berg"} <= set(name_variants("van der Berg", surname=True))
    assert {"smithjones", "jones", "smith"} <= set(name_variants("Smith-Jones", surname=True))
    assert name_variants("William")[0] == "william" and "bill" in name_variants("William")
    assert name_variants("") == []


@pytest.mark.parametrize(
    ("first", "last", "local", "pattern"),
    [
        ("José", "García", "jose.garcia", "{first}.{last}"),
        ("Anne", "O'Neil", "aoneil", "{f}{last}"),
        ("Jean-Pierre", "Dupont", "jean-pierre.dupont", "{first}.{last}"),
        ("Jürgen", "Müller", "juergen_mueller", "{first}_{last}"),
        ("Дмитрий", "Иванов", "dmitriy.ivanov", "{first}.{last}"),
        ("伟", "王", "wangwei", "{last}{first}"),
        ("Kees", "van der Berg", "kees.berg", "{first}.{last}"),
        ("Priya", "Patel", "patelp", "{last}{f}"),
        ("Bob", "Stone", "bob", "{first}"),
    ],
)
def test_detect_patterns(first: str, last: str, local: str, pattern: str) -> None:
    assert pattern in detect_patterns(first, last, local)


def test_detect_nothing_for_addresses_outside_every_pattern() -> None:
    assert detect_patterns("Jane", "Doe", "jd1987") == []


def test_without_evidence_candidates_follow_the_priors() -> None:
    model = PatternModel()
    candidates = model.candidates("Jane", "Doe", "Acme.com", limit=3)
    assert [c.email for c in candidates] == ["jane.doe@acme.com", "jdoe@acme.com", "jane@acme.com"]
    assert [c.rank for c in candidates] == [0, 1, 2]
    assert candidates[0].probability == pytest.approx(PRIORS["{first}.{last}"], abs=0.01)


def test_a_domains_own_addresses_outrank_the_priors() -> None:
    model = PatternModel({"acme.com": {"{last}{f}": 4}, "other.com": {"{first}.{last}": 50}})
    top = model.candidates("Jane", "Doe", "acme.com", limit=2)
    assert top[0].email == "doej@acme.com" and top[0].probability > 0.7
    # one address already moves the ranking
    model = PatternModel({"beta.com": {"{first}_{last}": 1}})
    assert model.candidates("Jane", "Doe", "beta.com")[0].pattern == "{first}_{last}"
    shares = model.shares("beta.com")
    assert sum(shares.values()) == pytest.approx(1.0)


def test_learning_within_a_run_and_from_store_rows() -> None:
    model = PatternModel.from_rows([("acme.com", "{f}{last}", 2), ("ACME.com", "{f}{last}", 1)])
    assert model.known("acme.com") == 3
    model.add("acme.com", "{first}")
    assert model.known("acme.com") == 4


def test_variants_rank_below_plain_spellings_and_diacritics_are_folded() -> None:
    candidates = PatternModel({"x.com": {"{first}.{last}": 5}}).candidates("Jürgen", "Müller", "x.com", limit=10)
    emails = [c.email for c in candidates]
    assert emails[:2] == ["jurgen.muller@x.com", "juergen.mueller@x.com"]
    assert "juergen.muller@x.com" not in emails  # one address does not mix the spellings
    plain, variant = (c.probability for c in candidates if c.email in emails[:2])
    assert variant < plain


@pytest.mark.parametrize(
    ("first", "last", "domain", "first_guesses"),
    [
        ("Jörg", "Müller", "x.de", ["joerg.mueller", "jorg.muller", "jmueller", "jmuller"]),
        ("Jörg", "Müller", "x.com", ["jorg.muller", "joerg.mueller", "jmuller", "jmueller"]),
        ("Дмитрий", "Иванов", "x.ru", ["dmitry.ivanov", "dmitriy.ivanov", "divanov", "dmitry"]),
        ("伟", "王", "x.cn", ["wei.wang", "wangwei", "weiwang", "wwang"]),
        ("Jane", "Doe", "x.com", ["jane.doe", "jdoe", "jane", "janed"]),
    ],
)
def test_the_default_four_guesses_try_both_spellings(
    first: str, last: str, domain: str, first_guesses: list[str]
) -> None:
    """The email stage verifies four guesses per lead by default: a second spelling must not cost more probes."""
    emails = [c.email for c in PatternModel().candidates(first, last, domain, limit=4)]
    assert emails == [f"{local}@{domain}" for local in first_guesses]


def test_a_chinese_name_written_family_name_first_is_guessed_as_chinese_companies_write_it() -> None:
    """王伟 (first name 伟, last name 王) had wangwei, the address Chinese companies give him, last of fourteen
    guesses, after wei, weiw and wangw: the default four probes never tried it. It is second, after wei.wang, and the
    same name in Latin letters (its order unknown) keeps the Western order; a domain's known addresses still lead."""
    emails = [c.email.partition("@")[0] for c in PatternModel().candidates("伟", "王", "x.com", limit=4)]
    assert emails == ["wei.wang", "wangwei", "weiwang", "wwang"]
    latin = [c.email.partition("@")[0] for c in PatternModel().candidates("Wei", "Wang", "x.com", limit=4)]
    assert latin == ["wei.wang", "wwang", "wei", "weiw"]
    known = PatternModel({"x.com": {"{f}{last}": 2}}).candidates("伟", "王", "x.com", limit=1)
    assert known[0].email == "wwang@x.com"
    assert sum(PatternModel().shares("x.com", family_first=True).values()) == pytest.approx(1.0)
