"""Pattern detection, learning and candidate generation, including diacritics, hyphens and particles."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.contacts.patterns import PRIORS, PatternModel, detect_patterns, mailbox_name, name_variants


@pytest.mark.parametrize(
    ("name", "spelled"),
    [("José", "jose"), ("O'Brien", "obrien"), ("Zoë", "zoe"), ("Ångström", "angstrom"), ("Mary Ann", "maryann")],
)
def test_mailbox_names_fold_accents_and_drop_punctuation(name: str, spelled: str) -> None:
    assert mailbox_name(name) == spelled


def test_variants_cover_hyphens_particles_umlauts_and_nicknames() -> None:
    assert {"jeanpierre", "jean-pierre", "jean"} <= set(name_variants("Jean-Pierre"))
    assert {"vanderberg", "berg"} <= set(name_variants("van der Berg", surname=True))
    assert {"muller", "mueller"} <= set(name_variants("Müller", surname=True))
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
    candidates = PatternModel({"x.de": {"{first}.{last}": 5}}).candidates("Jürgen", "Müller", "x.de", limit=10)
    emails = [c.email for c in candidates]
    assert emails[0] == "jurgen.muller@x.de"
    assert "juergen.mueller@x.de" in emails
    plain, variant = (c.probability for c in candidates if c.email in ("jurgen.muller@x.de", "juergen.mueller@x.de"))
    assert variant < plain
