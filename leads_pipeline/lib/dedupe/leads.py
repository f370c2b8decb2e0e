"""Duplicate leads: the matcher configured for lead fields, and clusters with the reasons they matched.

Exact rules: the same normalized email or the same LinkedIn URL makes two leads duplicates on its own. Fuzzy
rule: first and last name (Jaro-Winkler) with the company key, a shared E.164 phone, city and postal code
adding evidence, reaching the threshold. A shared phone alone is not enough: switchboard numbers repeat
across the people of a company. Candidates come from blocks on email, phone, LinkedIn URL, company key +
phonetic code of the last name, company key + last-name prefix, and the full name.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Final

import jellyfish
import numpy as np
import pandas as pd

from leads_pipeline.lib.dedupe.matcher import Blocking, Comparison, Matcher, clusters, column_key, joined_key

COLUMNS: Final[tuple[str, ...]] = (
    "id",
    "list_id",
    "email",
    "phone",
    "linkedin_url",
    "first_name",
    "last_name",
    "company_key",
    "city",
    "postal_code",
)
"""The lead columns duplicate detection reads."""


LEAD_MATCHER: Final = Matcher(
    comparisons=(
        Comparison("email", "exact", agree=6.0, decisive=True, label="email"),
        Comparison("linkedin_url", "exact", agree=6.0, disagree=3.0, decisive=True, label="LinkedIn URL"),
        Comparison("phone", "exact", agree=2.5, label="phone"),
        Comparison("first_key", "jaro_winkler", agree=2.5, disagree=2.5, high=0.92, low=0.75, label="first name"),
        Comparison("last_key", "jaro_winkler", agree=3.0, disagree=3.0, high=0.92, low=0.75, label="last name"),
        Comparison("company_key", "jaro_winkler", agree=2.0, disagree=1.5, high=0.90, low=0.70, label="company"),
        Comparison("city_key", "exact", agree=0.5, label="city"),
        Comparison("postal_code", "exact", agree=0.5, label="postal code"),
    ),
    blockings=(
        Blocking("email", column_key("email"), "id"),
        Blocking("LinkedIn URL", column_key("linkedin_url"), "id"),
        # A switchboard number is shared by many people of a company: ordered by last name, a person's other
        # records sit next to each other, so a few neighbours suffice.
        Blocking("phone", column_key("phone"), "last_key", window=4),
        Blocking("company + phonetic last name", joined_key("company_key", "last_code"), "first_key"),
        Blocking("company + last name prefix", joined_key("company_key", "last_prefix"), "first_key"),
        Blocking("full name", joined_key("first_key", "last_key"), "company_key"),
    ),
    threshold=6.0,
)


@dataclass(frozen=True)
class DuplicateCluster:
    """Leads that are one person: ids (lowest first), their lists, the best pair score and why they matched."""

    number: int
    lead_ids: list[int]
    list_ids: list[int]
    score: float
    reasons: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "cluster": self.number,
            "leadIds": self.lead_ids,
            "listIds": self.list_ids,
            "score": self.score,
            "threshold": LEAD_MATCHER.threshold,
            "reasons": self.reasons,
        }


def _fold(values: pd.Series) -> pd.Series:
    """Lower-case, accents dropped, non-letters removed: each distinct value computed once."""

    def fold(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        return "".join(c for c in decomposed if c.isalnum() or c == " ").strip()

    distinct = {v: fold(v) for v in values.dropna().unique()}
    return values.map(distinct).replace("", pd.NA).astype("string")


def prepare(leads: pd.DataFrame) -> pd.DataFrame:
    """The lead columns plus the derived keys the matcher compares and blocks on."""
    records = leads.reset_index(drop=True).copy()
    records["first_key"] = _fold(records["first_name"].astype("string"))
    records["last_key"] = _fold(records["last_name"].astype("string"))
    records["city_key"] = _fold(records["city"].astype("string"))
    distinct = {v: jellyfish.soundex(v) for v in records["last_key"].dropna().unique()}
    records["last_code"] = records["last_key"].map(distinct).astype("string")
    records["last_prefix"] = records["last_key"].str[:3]
    return records


def find_clusters(leads: pd.DataFrame) -> list[DuplicateCluster]:
    """Clusters of duplicate leads among ``leads`` (``COLUMNS``), numbered from 1 in order of their lowest id."""
    if len(leads) < 2:
        return []
    records = prepare(leads)
    matches = LEAD_MATCHER.match(records)
    pairs = matches.pairs
    scores = matches.scores.total
    reasons = _pair_reasons(matches.scores.similarities, len(pairs))
    ids = records["id"].to_numpy(dtype=np.int64)
    list_ids = records["list_id"].to_numpy(dtype=np.int64)
    found: list[tuple[list[int], list[int], float, list[str]]] = []
    pair_cluster: dict[int, int] = {}
    groups = clusters(len(records), pairs)
    for number, group in enumerate(groups):
        for position in group.tolist():
            pair_cluster[position] = number
    best = np.full(len(groups), -np.inf)
    why: list[set[str]] = [set() for _ in groups]
    for k, (a, _b) in enumerate(pairs.tolist()):
        number = pair_cluster[a]
        best[number] = max(best[number], scores[k])
        why[number].update(reasons[k])
    for number, group in enumerate(groups):
        found.append(
            (
                sorted(int(i) for i in ids[group]),
                sorted({int(i) for i in list_ids[group]}),
                round(float(best[number]), 2),
                sorted(why[number]),
            )
        )
    found.sort(key=lambda item: item[0][0])
    return [
        DuplicateCluster(n, lead_ids, lists, score, why_) for n, (lead_ids, lists, score, why_) in enumerate(found, 1)
    ]


def _pair_reasons(similarities: dict[str, np.ndarray], count: int) -> list[list[str]]:
    """For each of ``count`` matched pairs, the fields that agreed: "same email", "similar last name (0.94)"."""
    exact = {c.name for c in LEAD_MATCHER.comparisons if c.method == "exact"}
    highs = {c.name: c.high for c in LEAD_MATCHER.comparisons}
    out: list[list[str]] = [[] for _ in range(count)]
    for name, values in similarities.items():
        agreeing = np.flatnonzero(np.nan_to_num(values, nan=0.0) >= highs[name])
        for k in agreeing.tolist():
            similarity = values[k]
            out[k].append(f"same {name}" if name in exact or similarity >= 1.0 else f"similar {name}")
    return out
