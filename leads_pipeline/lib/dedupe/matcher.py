"""A record matcher: blocking, field comparisons, a weighted score and clusters, vectorized end to end.

Comparing every record with every other is quadratic (5*10^11 pairs for a million leads), so candidates come
from **blocking**: records sharing a blocking key (an email, a phonetic code of the last name plus a company
key, a postcode...) are compared. Inside a block sorted by a secondary key, each record is compared with its
``window`` next neighbours (sorted neighbourhood): small blocks are compared fully, a huge block (a common name)
costs ``window`` comparisons per record instead of quadratic work.

Each candidate pair is then scored field by field (rapidfuzz's ``cpdist`` computes a whole column of
Jaro-Winkler similarities in C), in the spirit of Fellegi-Sunter: a field both records have adds its
agreement weight when the values are similar enough (``high``), a share of it in between, and subtracts its
disagreement weight when they are dissimilar (below ``low``); a missing value adds nothing. A ``decisive``
field (an email address) makes a pair a match on its own when equal. Pairs at or above the threshold are
matches; clusters are the connected components of the matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

Method = Literal["exact", "jaro_winkler"]
BlockKey = Callable[[pd.DataFrame], pd.Series]
"""A function of the records returning one key per record (NA: the record is in no block for this key)."""

_MIN_WORKERS: Final = 20_000  # below this many pairs, threads cost more than they save
PAIR_CHUNK: Final = 1_000_000
"""Candidate pairs scored at a time: each holds a dozen arrays of its length and the pair strings rapidfuzz
converts, so scoring all of a 300k-lead list's 7.5M pairs at once doubled the peak memory of a dedupe (2 GB)."""
Coded = tuple[np.ndarray, np.ndarray]
"""A column as codes into its distinct values (-1: missing or empty) and those values."""


def column_key(name: str) -> BlockKey:
    """Block on a column's value."""
    return lambda records: records[name]


def joined_key(*names: str) -> BlockKey:
    """Block on several columns' values together; NA unless all of them are present."""

    def key(records: pd.DataFrame) -> pd.Series:
        joined = records[names[0]].astype("string")
        for name in names[1:]:
            joined = joined + "|" + records[name].astype("string")
        return joined

    return key


@dataclass(frozen=True)
class Comparison:
    """How one field counts towards a match."""

    field: str
    method: Method
    agree: float
    disagree: float = 0.0
    high: float = 1.0
    low: float = 1.0
    decisive: bool = False
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.field.replace("_", " ")


@dataclass(frozen=True)
class Blocking:
    """A blocking key and the key that orders records inside a block (for the sorted neighbourhood)."""

    name: str
    key: BlockKey
    order: str | None = None
    window: int | None = None  # neighbours compared inside a block; None: the matcher's window


@dataclass(frozen=True)
class Matcher:
    comparisons: tuple[Comparison, ...]
    blockings: tuple[Blocking, ...]
    threshold: float
    window: int = 30

    def candidate_pairs(self, records: pd.DataFrame) -> np.ndarray:
        """Unique candidate pairs (positions i < j into ``records``) from every blocking, as an (n, 2) array."""
        found: list[np.ndarray] = []
        for blocking in self.blockings:
            found.append(_block_pairs(blocking.key(records), records, blocking.order, blocking.window or self.window))
        if not found:
            return np.empty((0, 2), dtype=np.int64)
        pairs = np.concatenate(found)
        if len(pairs) == 0:
            return pairs
        encoded = np.unique(pairs[:, 0] * len(records) + pairs[:, 1])
        return np.stack([encoded // len(records), encoded % len(records)], axis=1)

    def score(self, records: pd.DataFrame, pairs: np.ndarray) -> Scores:
        """The score of each pair, whether a decisive field agreed, and each field's similarity (NaN: missing)."""
        return self._score(self._coded(records), pairs)

    def _coded(self, records: pd.DataFrame) -> dict[str, Coded]:
        return {c.field: _coded(records[c.field]) for c in self.comparisons}

    def _score(self, columns: dict[str, Coded], pairs: np.ndarray) -> Scores:
        total = np.zeros(len(pairs))
        decisive = np.zeros(len(pairs), dtype=bool)
        similarities: dict[str, np.ndarray] = {}
        for comparison in self.comparisons:
            similarity = _similarity(columns[comparison.field], pairs, comparison.method)
            similarities[comparison.name] = similarity
            present = ~np.isnan(similarity)
            s = np.where(present, similarity, 0.0)
            span = max(comparison.high - comparison.low, 1e-9)
            partial = np.clip((s - comparison.low) / span, 0.0, 1.0)
            contribution = np.where(s >= comparison.high, comparison.agree, comparison.agree * partial)
            contribution = np.where(s < comparison.low, -comparison.disagree, contribution)
            total += np.where(present, contribution, 0.0)
            if comparison.decisive:
                decisive |= present & (s >= 1.0)
        return Scores(total, decisive, similarities)

    def match(self, records: pd.DataFrame) -> Matches:
        """The candidate pairs that match and their scores (ordered by pair), generated and scored ``PAIR_CHUNK``
        pairs at a time: only the matches are kept."""
        columns = self._coded(records)
        found: list[tuple[np.ndarray, Scores]] = []
        candidates = 0
        neighbourhoods = (
            (*_neighbourhood(b.key(records), records, b.order), b.window or self.window) for b in self.blockings
        )
        for chunk in _candidate_chunks(neighbourhoods, len(records)):
            candidates += len(chunk)
            scores = self._score(columns, chunk)
            matched = scores.decisive | (scores.total >= self.threshold)
            kept = {name: values[matched] for name, values in scores.similarities.items()}
            found.append((chunk[matched], Scores(scores.total[matched], scores.decisive[matched], kept)))
        if not found:
            return Matches(np.empty((0, 2), dtype=np.int64), self._score(columns, np.empty((0, 2), np.int64)), 0)
        pairs = np.concatenate([chunk for chunk, _ in found])
        order = np.lexsort((pairs[:, 1], pairs[:, 0]))
        return Matches(
            pairs[order],
            Scores(
                np.concatenate([s.total for _, s in found])[order],
                np.concatenate([s.decisive for _, s in found])[order],
                {c.name: np.concatenate([s.similarities[c.name] for _, s in found])[order] for c in self.comparisons},
            ),
            candidates,
        )


@dataclass(frozen=True)
class Scores:
    total: np.ndarray
    decisive: np.ndarray
    similarities: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Matches:
    """The pairs that match (positions i < j), their scores, and how many candidate pairs were compared."""

    pairs: np.ndarray
    scores: Scores
    candidates: int


def _block_pairs(keys: pd.Series, records: pd.DataFrame, order: str | None, window: int) -> np.ndarray:
    """Pairs of positions sharing a key: each record with its ``window`` next neighbours in key order."""
    found = list(_offset_pairs(*_neighbourhood(keys, records, order), window))
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)


def _candidate_chunks(neighbourhoods: Iterable[tuple[np.ndarray, np.ndarray, int]], n: int) -> Iterator[np.ndarray]:
    """The candidate pairs of the blockings' ``neighbourhoods`` (block codes and positions in order, window) over
    ``n`` records, each once, ``PAIR_CHUNK`` at a time: a blocking's pairs come a neighbour offset at a time, and
    a pair an earlier blocking gives too is dropped by its block and rank there, so no list of every pair is held
    to deduplicate them (7.5M pairs for a 300k-lead list)."""
    earlier: list[tuple[np.ndarray, np.ndarray, int]] = []  # per record: block code (-1: none), rank; window
    pending: list[np.ndarray] = []
    size = 0
    for codes, positions, window in neighbourhoods:
        for pairs in _offset_pairs(codes, positions, window):
            for code, rank, width in earlier:
                left, right = pairs[:, 0], pairs[:, 1]
                given = (code[left] >= 0) & (code[left] == code[right]) & (abs(rank[left] - rank[right]) <= width)
                pairs = pairs[~given]
            pending.append(pairs)
            size += len(pairs)
            if size >= PAIR_CHUNK:
                joined = np.concatenate(pending)
                cut = len(joined) - len(joined) % PAIR_CHUNK
                yield from np.split(joined[:cut], cut // PAIR_CHUNK)
                pending, size = [joined[cut:].copy()], len(joined) - cut
        code = np.full(n, -1, dtype=np.int32)
        rank = np.zeros(n, dtype=np.int32)
        code[positions], rank[positions] = codes, np.arange(len(positions))
        earlier.append((code, rank, window))
    if size:
        yield np.concatenate(pending)


def _neighbourhood(keys: pd.Series, records: pd.DataFrame, order: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The block codes and positions of the records with a key, sorted by block, then ``order``, then position."""
    keys = keys.reset_index(drop=True)
    valid = keys.notna().to_numpy()
    positions = np.flatnonzero(valid)
    if not valid.any():
        return np.empty(0, dtype=np.int64), positions
    codes, _ = pd.factorize(keys[valid])
    secondary = (
        pd.factorize(records[order].reset_index(drop=True)[valid].fillna(""), sort=True)[0]
        if order
        else np.zeros(len(positions), dtype=np.int64)
    )
    ordering = np.lexsort((positions, secondary, codes))
    return codes[ordering], positions[ordering]


def _offset_pairs(codes: np.ndarray, positions: np.ndarray, window: int) -> Iterator[np.ndarray]:
    """The pairs (i < j) of records ``offset`` apart in the same block, one offset of 1..``window`` at a time."""
    for offset in range(1, window + 1):
        if offset >= len(codes):
            break
        same = codes[:-offset] == codes[offset:]
        if not same.any():
            break  # no block has more than ``offset`` records: larger offsets find nothing either
        left, right = positions[:-offset][same], positions[offset:][same]
        yield np.stack([np.minimum(left, right), np.maximum(left, right)], axis=1)


def _coded(column: pd.Series) -> Coded:
    """The column's values factorized once, for every chunk of pairs."""
    text = column.reset_index(drop=True).astype("string")
    codes, uniques = pd.factorize(text.mask(text == ""))
    return codes, np.asarray(uniques, dtype=object)


def _similarity(column: Coded, pairs: np.ndarray, method: Method) -> np.ndarray:
    """Similarity in [0, 1] of the two values of each pair; NaN where either is missing or empty."""
    codes, values = column
    left, right = codes[pairs[:, 0]], codes[pairs[:, 1]]
    missing = (left < 0) | (right < 0)
    similarity = np.full(len(pairs), np.nan)
    if method == "exact":  # equal codes are equal values: integer comparisons, not string ones
        similarity[~missing] = (left[~missing] == right[~missing]).astype(float)
        return similarity
    present = np.flatnonzero(~missing)
    workers = -1 if len(present) >= _MIN_WORKERS else 1
    similarity[present] = process.cpdist(
        values[left[present]], values[right[present]], scorer=JaroWinkler.normalized_similarity, workers=workers
    )
    return similarity


def clusters(n: int, pairs: np.ndarray) -> list[np.ndarray]:
    """Connected components (of size 2 or more) of the graph on ``n`` positions with edges ``pairs``."""
    parent = np.arange(n)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members = np.unique(pairs) if len(pairs) else np.empty(0, dtype=np.int64)
    roots = np.array([find(int(i)) for i in members], dtype=np.int64)
    order = np.argsort(roots, kind="stable")
    roots, members = roots[order], members[order]
    boundaries = np.flatnonzero(np.diff(roots)) + 1
    return [group for group in np.split(members, boundaries) if len(group) > 1]
