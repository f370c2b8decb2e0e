"""The record matcher's pieces: blocking with a window, scoring with partial agreement, clusters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from leads_pipeline.lib.dedupe import matcher
from leads_pipeline.lib.dedupe.leads import find_clusters
from leads_pipeline.lib.dedupe.matcher import Blocking, Comparison, Matcher, clusters, column_key, joined_key


def _frame(**columns: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(v, dtype="string") for k, v in columns.items()})


def test_blocking_compares_within_a_block_only_and_up_to_the_window() -> None:
    records = _frame(key=["a", "b", "a", "a", None, "a", "b"], order=["1", "1", "2", "3", "1", "4", "2"])
    full = Matcher((), (Blocking("k", column_key("key"), "order"),), threshold=1, window=10)
    assert full.candidate_pairs(records).tolist() == [[0, 2], [0, 3], [0, 5], [1, 6], [2, 3], [2, 5], [3, 5]]
    narrow = Matcher((), (Blocking("k", column_key("key"), "order", window=1),), threshold=1)
    assert narrow.candidate_pairs(records).tolist() == [[0, 2], [1, 6], [2, 3], [3, 5]]


def test_joined_key_needs_every_part() -> None:
    records = _frame(a=["x", "x", None], b=["y", None, "y"])
    assert joined_key("a", "b")(records).tolist() == ["x|y", pd.NA, pd.NA]


def test_score_partial_agreement_disagreement_and_missing_values() -> None:
    rule = Comparison("name", "jaro_winkler", agree=4.0, disagree=2.0, high=0.9, low=0.7)
    matcher = Matcher((rule, Comparison("id", "exact", agree=5.0, decisive=True)), (), threshold=3.0)
    records = _frame(name=["martha", "marhta", "zed", None], id=[None, None, "x", "x"])
    pairs = np.array([[0, 1], [0, 2], [0, 3], [2, 3]])
    scores = matcher.score(records, pairs)
    assert scores.total[0] == 4.0  # Jaro-Winkler 0.96: full agreement
    assert scores.total[1] == -2.0  # dissimilar: the disagreement weight
    assert scores.total[2] == 0.0  # a missing value says nothing
    assert scores.decisive.tolist() == [False, False, False, True]
    assert np.isnan(scores.similarities["name"][2])


def test_clusters_are_connected_components() -> None:
    groups = clusters(7, np.array([[0, 3], [3, 5], [1, 6]]))
    assert [g.tolist() for g in groups] == [[0, 3, 5], [1, 6]]
    assert clusters(3, np.empty((0, 2), dtype=np.int64)) == []


def test_lead_rules() -> None:
    leads = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "list_id": [1, 1, 2, 2, 1, 1],
            "email": ["a@x.com", None, "a@x.com", None, None, None],
            "phone": [None, "+14155550100", None, "+14155550100", None, None],
            "linkedin_url": [None] * 6,
            "first_name": ["Ann", "Jon", "Anne-Marie", "Jane", "Zoë", "Zoe"],
            "last_name": ["Lee", "Smith", "Lee", "Doe", "Müller", "Muller"],
            "company_key": ["acme", "globex", None, "globex", "initech", "initech"],
            "city": [None] * 6,
            "postal_code": [None] * 6,
        }
    ).astype({c: "string" for c in ("email", "phone", "linkedin_url", "first_name", "last_name", "company_key")})
    found = find_clusters(leads)
    assert [(c.lead_ids, c.list_ids) for c in found] == [([1, 3], [1, 2]), ([5, 6], [1])]
    assert "same email" in found[0].reasons
    assert {"same first name", "same last name", "same company"} <= set(found[1].reasons), "accents are folded"


def test_match_scores_the_pairs_a_chunk_at_a_time_and_keeps_only_the_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory of a dedupe: all the candidate pairs' strings and score arrays at once were half its peak."""
    rule = Comparison("name", "jaro_winkler", agree=4.0, disagree=2.0, high=0.9, low=0.7)
    matcher_ = Matcher((rule,), (Blocking("k", column_key("key"), "name"),), threshold=3.0, window=50)
    names = [f"{first} {last}" for first in ("ann", "anne", "bob", "rob", "eve") for last in ("lee", "li", "ng")]
    records = _frame(key=[str(i % 4) for i in range(600)], name=[names[i % len(names)] for i in range(600)])
    whole = matcher_.match(records)
    compared: list[int] = []
    cpdist = matcher.process.cpdist

    def recording(queries: Any, choices: Any, **kwargs: Any) -> Any:
        compared.append(len(queries))
        return cpdist(queries, choices, **kwargs)

    monkeypatch.setattr(matcher.process, "cpdist", recording)
    monkeypatch.setattr(matcher, "PAIR_CHUNK", 1_000)

    chunked = matcher_.match(records)

    assert chunked.candidates == whole.candidates > 5 * 1_000
    assert len(compared) >= 5 and max(compared) <= 1_000
    assert 0 < len(chunked.pairs) < chunked.candidates  # only the matches are kept
    assert chunked.pairs.tolist() == whole.pairs.tolist()
    assert chunked.scores.total.tolist() == whole.scores.total.tolist()
    assert chunked.scores.similarities["name"].tolist() == whole.scores.similarities["name"].tolist()


def test_match_generates_the_pairs_a_chunk_at_a_time_each_once_with_the_same_matches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory of a dedupe: every blocking's pairs at once, to deduplicate them, were most of what remained."""
    rule = Comparison("name", "jaro_winkler", agree=4.0, disagree=2.0, high=0.9, low=0.7)
    blockings = (Blocking("a", column_key("a"), "name"), Blocking("b", column_key("b"), "name", window=20))
    matcher_ = Matcher((rule,), blockings, threshold=3.0, window=50)
    names = [f"{first} {last}" for first in ("ann", "anne", "bob", "rob", "eve") for last in ("lee", "li", "ng")]
    records = _frame(
        a=[str(i % 4) for i in range(600)], b=[str(i % 6) for i in range(600)], name=[names[i % 15] for i in range(600)]
    )
    every = matcher_.candidate_pairs(records)  # the blockings share pairs (a record's block in a and in b)
    scores = matcher_.score(records, every)
    matched = scores.total >= matcher_.threshold
    chunks: list[np.ndarray] = []
    candidate_chunks = matcher._candidate_chunks

    def recording(*args: Any) -> Any:
        for chunk in candidate_chunks(*args):
            chunks.append(chunk)
            yield chunk

    monkeypatch.setattr(matcher, "_candidate_chunks", recording)
    monkeypatch.setattr(matcher, "PAIR_CHUNK", 1_000)
    monkeypatch.setattr(Matcher, "candidate_pairs", None)  # match must not hold every pair

    found = matcher_.match(records)

    assert len(chunks) > 5 and max(len(c) for c in chunks) <= 1_000
    assert sorted(map(tuple, np.concatenate(chunks).tolist())) == list(map(tuple, every.tolist()))  # each once
    assert found.candidates == len(every)
    assert found.pairs.tolist() == every[matched].tolist()
    assert found.scores.total.tolist() == scores.total[matched].tolist()
    assert found.scores.similarities["name"].tolist() == scores.similarities["name"][matched].tolist()
