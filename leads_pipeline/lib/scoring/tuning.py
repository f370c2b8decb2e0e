"""Tuning a rule configuration on labelled outcomes: engagement points and the MQL threshold learned from data.

Each field becomes an engagement signal with points per value (for numbers: per quantile bin), per missing value
and a default for values never seen; the score is their sum, readable value by value in the YAML it produces.
Two ways to set the points, both in log-odds of conversion (``POINTS_PER_LOG_ODDS`` points each), shifted so the
least promising value of a signal scores 0:

- ``naive-bayes``: each value's own smoothed log-odds, field by field;
- ``logistic``: an L2-regularised logistic regression over all the signals' values at once, so that fields that
  say the same thing (a source and an origin, three activity columns) are not counted twice.

:func:`tune_rules` picks the method and regularisation by cross-validated accuracy on the rows it is given, then
fits the points on all of them and sets the MQL threshold to the score that best separates converted from not.
Nothing of a held-out part is used. A placeholder such as "Select" is a value of its own here: the rules score
the text a lead carries, and leads who left a form field on "Select" convert differently from those never shown it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from leads_pipeline.lib.scoring.config import ScoringConfig, parse_config
from leads_pipeline.lib.scoring.model import FeatureSpec, as_number
from leads_pipeline.lib.scoring.rules import LeadInput, Rules
from leads_pipeline.lib.wording import plain_number

SMOOTHING = 20.0
POINTS_PER_LOG_ODDS = 10.0
FOLDS = 4


@dataclass(frozen=True)
class Method:
    """How points are fitted: ``naive-bayes`` or ``logistic`` (``c``: inverse L2 regularisation), with numbers cut
    into ``bins`` quantile bins."""

    name: str
    c: float = 0.0
    bins: int = 8

    def __str__(self) -> str:
        c = f" C={plain_number(self.c)}" if self.name == "logistic" else ""
        return f"{self.name}{c} bins={self.bins}"


CANDIDATES: tuple[Method, ...] = (
    Method("naive-bayes"),
    Method("logistic", 0.1, 8),
    Method("logistic", 0.1, 16),
    Method("logistic", 0.3, 16),
    Method("logistic", 0.1, 24),
)
"""What cross-validation chooses from."""


def _text(value: Any) -> str | None:
    """A categorical value as the rules read it (``LeadInput.value``): stripped text, blank = missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


@dataclass(frozen=True)
class _Signal:
    """One field's columns in the design matrix: its values (or bin edges), then missing, then default."""

    path: str
    numeric: bool
    keys: tuple[Any, ...]

    @property
    def width(self) -> int:
        return len(self.keys) + 2

    def columns(self, values: Sequence[Any]) -> np.ndarray:
        """Each row's column within the signal."""
        missing, default = len(self.keys), len(self.keys) + 1
        if self.numeric:
            numbers = np.array([as_number(v) for v in values], dtype=float)
            bins = np.searchsorted(np.array(self.keys, dtype=float), numbers, side="right") - 1
            return np.where(np.isnan(numbers), missing, np.where(bins < 0, default, bins))
        index = {k.casefold(): i for i, k in enumerate(self.keys)}
        return np.array(
            [missing if (t := _text(v)) is None else index.get(t.casefold(), default) for v in values], dtype=int
        )

    def document(self, points: np.ndarray) -> dict[str, Any]:
        """The signal's configuration: its points shifted so the least promising option scores 0."""
        shifted = points - min(float(points.min()), 0.0)
        signal: dict[str, Any] = {"field": self.path}
        if self.numeric:
            signal["steps"] = [
                {"min": edge, "points": round(float(p), 2)} for edge, p in zip(self.keys, shifted, strict=False)
            ]
        else:
            signal["values"] = {k: round(float(p), 2) for k, p in zip(self.keys, shifted, strict=False)}
        signal["missing"] = round(float(shifted[-2]), 2)
        signal["default"] = round(float(shifted[-1]), 2)
        return signal


def _signals(rows: Sequence[Mapping[str, Any]], spec: FeatureSpec, bins: int) -> list[_Signal]:
    signals = []
    for path in spec.numeric:
        numbers = np.array([as_number(r.get(path)) for r in rows], dtype=float)
        filled = numbers[~np.isnan(numbers)]
        edges = sorted(set(np.quantile(filled, np.linspace(0, 1, bins + 1)[:-1]).tolist())) if len(filled) else []
        signals.append(_Signal(path, True, tuple(edges)))
    for path in spec.categorical:
        seen: dict[str, str] = {}
        for r in rows:
            text = _text(r.get(path))
            if text is not None:
                seen.setdefault(text.casefold(), text)
        signals.append(_Signal(path, False, tuple(sorted(seen.values()))))
    return signals


def _design(signals: Sequence[_Signal], rows: Sequence[Mapping[str, Any]]) -> sparse.csr_matrix:
    """One-hot rows: one column per signal option, so a lead's score is the design row times the points."""
    blocks = []
    for signal in signals:
        columns = signal.columns([r.get(signal.path) for r in rows])
        ones = np.ones(len(rows))
        blocks.append(sparse.csr_matrix((ones, (np.arange(len(rows)), columns)), shape=(len(rows), signal.width)))
    return sparse.hstack(blocks, format="csr") if blocks else sparse.csr_matrix((len(rows), 0))


def _points(design: sparse.csr_matrix, labels: np.ndarray, method: Method) -> np.ndarray:
    """Points per design column (before the per-signal shift)."""
    if method.name == "logistic" and design.shape[1]:
        model = LogisticRegression(C=method.c, max_iter=2000).fit(design, labels)
        return POINTS_PER_LOG_ODDS * model.coef_[0]
    base = float(labels.mean())
    totals = np.asarray(design.sum(axis=0)).ravel()
    positives = np.asarray(design.T @ labels).ravel()
    rate = (positives + SMOOTHING * base) / (totals + SMOOTHING)
    return POINTS_PER_LOG_ODDS * (np.log(rate / (1 - rate)) - math.log(base / (1 - base)))


def _best_cut(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score at or above which predicting "converts" is most accurate on these rows."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], labels[order].astype(float)
    # predicting the top k as converted: right on the positives among them and the negatives below
    correct = np.cumsum(hits) + (len(labels) - labels.sum()) - np.cumsum(1 - hits)
    distinct = np.r_[ranked[1:] != ranked[:-1], True]  # cut only between different scores
    best = int(np.argmax(np.where(distinct, correct, -1)))
    none_correct = len(labels) - labels.sum()
    return float(ranked[best]) if correct[best] > none_correct else math.inf


def _cross_validated_accuracy(
    rows: Sequence[Mapping[str, Any]], labels: np.ndarray, spec: FeatureSpec, method: Method
) -> float:
    right = 0
    for fit, held in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(np.zeros(len(labels)), labels):
        fit_rows = [rows[i] for i in fit]
        signals = _signals(fit_rows, spec, method.bins)
        design = _design(signals, fit_rows)
        points = _points(design, labels[fit], method)
        cut = _best_cut(design @ points, labels[fit])
        held_scores = _design(signals, [rows[i] for i in held]) @ points
        right += int(((held_scores >= cut) == labels[held].astype(bool)).sum())
    return right / len(labels)


def lead_input(index: int, row: Mapping[str, Any]) -> LeadInput:
    """A labelled row (field path -> value) as scoring reads a stored lead."""
    columns = {k: v for k, v in row.items() if not k.startswith("custom.")}
    custom = {k.removeprefix("custom."): v for k, v in row.items() if k.startswith("custom.")}
    return LeadInput(index, columns, custom)


def _best_threshold(scores: np.ndarray, labels: np.ndarray) -> int:
    accuracies = [(float(((scores >= t) == labels.astype(bool)).mean()), t) for t in range(0, 101)]
    return max(accuracies)[1]


def choose_method(
    rows: Sequence[Mapping[str, Any]], labels: np.ndarray, spec: FeatureSpec
) -> tuple[Method, dict[str, float]]:
    """The candidate method with the best cross-validated accuracy on the rows (the simplest on a tie), and
    every candidate's accuracy."""
    accuracy = {str(m): _cross_validated_accuracy(rows, labels, spec, m) for m in CANDIDATES}
    best = max(CANDIDATES, key=lambda m: accuracy[str(m)])
    return best, accuracy


def tune_rules(
    rows: Sequence[Mapping[str, Any]],
    labels: np.ndarray,
    spec: FeatureSpec,
    *,
    now: datetime | None = None,
    method: Method | None = None,
) -> ScoringConfig:
    """An engagement-only rule configuration fitted to the rows (with ``method``, else the one cross-validation
    picks), with the training-accuracy-best MQL threshold."""
    chosen = method or choose_method(rows, labels, spec)[0]
    signals = _signals(rows, spec, chosen.bins)
    points = _points(_design(signals, rows), labels, chosen)
    documents, start = [], 0
    for signal in signals:
        documents.append(signal.document(points[start : start + signal.width]))
        start += signal.width
    document: dict[str, Any] = {
        "weights": {"dataCompleteness": 0, "companyFit": 0, "engagement": 1, "recency": 0},
        "engagement": {"signals": documents},
    }
    draft = parse_config(document, source="tuned configuration")
    moment = now or datetime.now(UTC)
    rules = Rules(draft)
    scores = np.array([rules.score(lead_input(i, r), moment).score for i, r in enumerate(rows)])
    mql = _best_threshold(scores, labels)
    sql = min(100, mql + max(1, (100 - mql) // 2))
    return parse_config({**document, "thresholds": {"mql": mql, "sql": sql}}, source="tuned configuration")
