"""Tuning a rule configuration on labelled outcomes: engagement points and the MQL threshold learned from data.

Each field becomes an engagement signal whose points are the smoothed log-odds of conversion of its values (for
numbers: of quantile bins), shifted so the least promising value scores 0. The sum over signals is a naive-Bayes
score, readable value by value in the YAML it produces; the MQL threshold is the score that best separates
converted from not on the same training rows. Nothing of a held-out part is used.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from leads_pipeline.lib.scoring.config import ScoringConfig, parse_config
from leads_pipeline.lib.scoring.model import FeatureSpec, as_number, clean_text
from leads_pipeline.lib.scoring.rules import LeadInput, score_lead

SMOOTHING = 20.0
NUMERIC_BINS = 8
POINTS_PER_LOG_ODDS = 10.0


def _log_odds(positives: float, total: float, base_rate: float) -> float:
    rate = (positives + SMOOTHING * base_rate) / (total + SMOOTHING)
    return math.log(rate / (1 - rate)) - math.log(base_rate / (1 - base_rate))


def _categorical_signal(path: str, values: Sequence[Any], labels: np.ndarray, base: float) -> dict[str, Any]:
    keys = [clean_text(v) for v in values]
    totals = Counter(keys)
    positives = Counter(k for k, label in zip(keys, labels, strict=True) if label)
    points = {k: POINTS_PER_LOG_ODDS * _log_odds(positives[k], n, base) for k, n in totals.items()}
    floor = min([*points.values(), 0.0])
    signal: dict[str, Any] = {
        "field": path,
        "values": {k: round(p - floor, 2) for k, p in points.items() if k is not None},
        "default": round(-floor, 2),  # a value never seen in training: as likely as the average lead
    }
    signal["missing"] = round(points.get(None, 0.0) - floor, 2)
    return signal


def _numeric_signal(path: str, values: Sequence[Any], labels: np.ndarray, base: float) -> dict[str, Any]:
    numbers = np.array([as_number(v) for v in values], dtype=float)
    filled = ~np.isnan(numbers)
    edges = sorted(set(np.quantile(numbers[filled], np.linspace(0, 1, NUMERIC_BINS + 1)[:-1]).tolist()))
    bins = np.searchsorted(edges, numbers, side="right") - 1
    points: list[float] = []
    for i in range(len(edges)):
        mask = filled & (bins == i)
        points.append(POINTS_PER_LOG_ODDS * _log_odds(float(labels[mask].sum()), float(mask.sum()), base))
    missing = ~filled
    missing_points = POINTS_PER_LOG_ODDS * _log_odds(float(labels[missing].sum()), float(missing.sum()), base)
    floor = min([*points, missing_points, 0.0])
    return {
        "field": path,
        "steps": [{"min": edge, "points": round(p - floor, 2)} for edge, p in zip(edges, points, strict=True)],
        "default": round(-floor, 2),
        "missing": round(missing_points - floor, 2),
    }


def lead_input(index: int, row: Mapping[str, Any]) -> LeadInput:
    """A labelled row (field path -> value) as scoring reads a stored lead."""
    columns = {k: v for k, v in row.items() if not k.startswith("custom.")}
    custom = {k.removeprefix("custom."): v for k, v in row.items() if k.startswith("custom.")}
    return LeadInput(index, columns, custom)


def _best_threshold(scores: np.ndarray, labels: np.ndarray) -> int:
    accuracies = [(float(((scores >= t) == labels.astype(bool)).mean()), t) for t in range(0, 101)]
    return max(accuracies)[1]


def tune_rules(
    rows: Sequence[Mapping[str, Any]], labels: np.ndarray, spec: FeatureSpec, *, now: datetime | None = None
) -> ScoringConfig:
    """An engagement-only rule configuration fitted to the rows, with the training-accuracy-best MQL threshold."""
    base = float(labels.mean())
    signals = [_numeric_signal(p, [r.get(p) for r in rows], labels, base) for p in spec.numeric]
    signals += [_categorical_signal(p, [r.get(p) for r in rows], labels, base) for p in spec.categorical]
    document: dict[str, Any] = {
        "weights": {"dataCompleteness": 0, "companyFit": 0, "engagement": 1, "recency": 0},
        "engagement": {"signals": signals},
    }
    draft = parse_config(document, source="tuned configuration")
    moment = now or datetime.now(UTC)
    scores = np.array([score_lead(lead_input(i, r), draft, moment).score for i, r in enumerate(rows)])
    mql = _best_threshold(scores, labels)
    sql = min(100, mql + max(1, (100 - mql) // 2))
    return parse_config({**document, "thresholds": {"mql": mql, "sql": sql}}, source="tuned configuration")
