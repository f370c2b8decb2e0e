"""Rule-based scoring: a lead and a configuration give a 0-100 score, its components, a band and the reasons.

Each component is a ratio from 0 to 1 times its share of 100 points (the configured weights, scaled). The score
is the rounded sum; the components are rounded to whole points by largest remainder so they always add up to the
score exactly. Every component also says why, in words, with the points each reason earned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from leads_pipeline.lib.scoring.config import CUSTOM_PREFIX, TEXT_CRITERIA, Range, ScoringConfig, Signal

_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class LeadInput:
    """What scoring reads of a lead: its columns, its custom fields, the technologies enrichment found."""

    id: int
    columns: Mapping[str, Any]
    custom: Mapping[str, Any] = field(default_factory=dict)
    technologies: Sequence[str] = ()
    data_updated_at: datetime | None = None

    def value(self, path: str) -> Any:
        """The value of a field path (``title``, ``custom.Visits``); blank text counts as missing."""
        custom = path.startswith(CUSTOM_PREFIX)
        found = self.custom.get(path[len(CUSTOM_PREFIX) :]) if custom else self.columns.get(path)
        if isinstance(found, str):
            found = found.strip()
            return found or None
        return found


@dataclass(frozen=True)
class Reason:
    component: str
    points: float
    text: str


@dataclass(frozen=True)
class ScoreResult:
    score: int
    components: dict[str, int]
    band: str
    reasons: tuple[Reason, ...]

    def explanation(self, top: int = 3) -> list[str]:
        """The strongest reasons, in words: what earned the most points, then what cost the most."""
        earned = sorted((r for r in self.reasons if r.points > 0.05), key=lambda r: -r.points)
        missed = [r for r in self.reasons if r.points <= 0.05]
        chosen = earned[:top] + missed[: max(0, top - len(earned[:top]))]
        return [f"{r.text} ({r.points:+.0f})" if r.points else r.text for r in chosen]


Part = tuple[float, str]
"""A share of a component's ratio (0..1) and the reason for it."""


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    try:
        parsed = float(str(value).replace(",", ""))
    except ValueError:
        return None
    return None if math.isnan(parsed) else parsed


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def completeness(lead: LeadInput, config: ScoringConfig) -> tuple[float, list[Part]]:
    fields = config.completeness.fields
    total = sum(fields.values())
    if total <= 0:
        return 0.0, []
    filled = {path: lead.value(path) is not None for path in fields}
    present = [(path, w) for path, w in fields.items() if filled[path]]
    missing = [path for path in fields if not filled[path]]
    ratio = sum(w for _, w in present) / total
    parts: list[Part] = []
    if present:
        parts.append((ratio, f"{len(present)} of {len(fields)} key fields filled"))
    if missing:
        parts.append((0.0, "missing " + ", ".join(p.removeprefix(CUSTOM_PREFIX) for p in missing[:4])))
    return ratio, parts


def _in_ranges(value: Any, ranges: list[Range]) -> tuple[bool, str] | None:
    number = _number(value)
    if number is None:
        return None
    for r in ranges:
        if r.contains(number):
            return True, r.describe()
    return False, ""


def company_fit(lead: LeadInput, config: ScoringConfig) -> tuple[float, list[Part]]:
    icp = config.company_fit
    checks: list[tuple[str, float, bool, str]] = []  # criterion, weight, matched, reason

    for criterion, path in TEXT_CRITERIA.items():
        options = icp.folded[criterion]
        if options:
            value = lead.value(path)
            matched = value is not None and str(value).casefold() in options
            checks.append((criterion, icp.criterion_weight(criterion), matched, f"{path} {value} in the ICP"))
    for criterion, ranges, path, label in (
        ("employees", icp.employees, "employee_count", "company size"),
        ("revenue", icp.revenue, "annual_revenue", "revenue"),
    ):
        if ranges:
            found = _in_ranges(lead.value(path), ranges)
            matched = found is not None and found[0]
            checks.append(
                (criterion, icp.criterion_weight(criterion), matched, f"{label} in {found[1] if found else ''}")
            )
    if icp.titles:
        title = (lead.value("title") or "").casefold()
        keyword = next((k for f, k in icp.folded_titles.items() if f in title), None) if title else None
        checks.append(("titles", icp.criterion_weight("titles"), keyword is not None, f"title has {keyword!r}"))
    if icp.technologies:
        technologies = icp.folded_technologies
        used = [technologies[t.casefold()] for t in lead.technologies if t.casefold() in technologies]
        checks.append(("technologies", icp.criterion_weight("technologies"), bool(used), "uses " + ", ".join(used[:3])))
    total = sum(weight for _, weight, _, _ in checks)
    if total <= 0:
        return 0.0, []
    parts: list[Part] = [(weight / total, reason) for _, weight, matched, reason in checks if matched]
    unmatched = [criterion for criterion, weight, matched, _ in checks if not matched and weight > 0]
    if unmatched:
        parts.append((0.0, "outside the ICP on " + ", ".join(unmatched[:4])))
    return sum(share for share, _ in parts), parts


def signal_points(signal: Signal, value: Any) -> tuple[float, str] | None:
    """Points a signal gives a value, with the reason; ``None`` when the value is missing and scores nothing."""
    number = _number(value) if signal.steps is not None else None
    if value is None or (signal.steps is not None and number is None):
        return (signal.missing, f"{signal.name} unknown") if signal.missing else None
    if signal.steps is not None and number is not None:
        reached = [s for s in signal.steps if number >= s.min]
        points = max(reached, key=lambda s: s.min).points if reached else signal.default
        return points, f"{signal.name} {number:g}"
    return signal.folded_values.get(str(value).casefold(), signal.default), f"{signal.name} {value}"


def engagement(lead: LeadInput, config: ScoringConfig) -> tuple[float, list[Part]]:
    full = config.engagement.full_points
    if full <= 0:
        return 0.0, []
    parts: list[Part] = []
    total = 0.0
    for signal in config.engagement.signals:
        found = signal_points(signal, lead.value(signal.field))
        if found is None or not found[0]:
            continue
        total += found[0]
        parts.append((found[0] / full, found[1]))
    if not parts and config.engagement.signals:
        parts.append((0.0, "no engagement recorded"))
    return min(1.0, max(0.0, total / full)), parts


def _decay(age_days: float, half_life: float) -> float:
    return 0.5 ** (max(0.0, age_days) / half_life)


def recency(lead: LeadInput, config: ScoringConfig, now: datetime) -> tuple[float, list[Part]]:
    settings = config.recency
    share = settings.activity_share if settings.activity_field else 0.0
    parts: list[Part] = []
    updated = lead.data_updated_at
    if updated is not None:
        age = (now - updated).total_seconds() / _SECONDS_PER_DAY
        decayed = (1 - share) * _decay(age, settings.data_half_life_days)
        parts.append((decayed, f"data {max(0, int(age))} days old"))
    if settings.activity_field:
        last = _timestamp(lead.value(settings.activity_field))
        if last is None:
            parts.append((0.0, "no recent activity recorded"))
        else:
            age = (now - last).total_seconds() / _SECONDS_PER_DAY
            parts.append((share * _decay(age, settings.activity_half_life_days), f"last activity {int(age)} days ago"))
    return min(1.0, sum(p for p, _ in parts)), parts


def band(score: float, config: ScoringConfig) -> str:
    hot, warm = config.band_floors()
    return "hot" if score >= hot else "warm" if score >= warm else "cold"


def whole_points(raw: Mapping[str, float]) -> tuple[int, dict[str, int]]:
    """The rounded score and whole-point components adding up to it exactly (largest remainder)."""
    score = max(0, min(100, round(sum(raw.values()))))
    floors = {name: math.floor(points) for name, points in raw.items()}
    left = score - sum(floors.values())
    by_remainder = sorted(raw, key=lambda name: raw[name] - floors[name], reverse=True)
    for name in by_remainder[: max(0, left)]:
        floors[name] += 1
    return score, floors


ComponentRule = Callable[[LeadInput, ScoringConfig], tuple[float, list[Part]]]
_RULES: dict[str, ComponentRule] = {
    "dataCompleteness": completeness,
    "companyFit": company_fit,
    "engagement": engagement,
}


def score_lead(
    lead: LeadInput, config: ScoringConfig, now: datetime, fit_probability: float | None = None
) -> ScoreResult:
    """Score one lead. ``fit_probability`` is the learned model's probability that the lead converts (needed when
    the configuration uses the model)."""
    if config.model.mode == "replace":
        if fit_probability is None:
            raise ValueError("the configuration replaces the rules by the fit model, but no probability was given")
        points = 100 * fit_probability
        score, components = whole_points({"fitModel": points})
        reason = Reason("fitModel", points, f"fit model: {fit_probability:.0%} likely to convert")
        return ScoreResult(score, components, band(score, config), (reason,))
    weights = config.component_weights()
    scale = 100 / sum(weights.values())
    raw: dict[str, float] = {}
    reasons: list[Reason] = []
    for name, weight in weights.items():
        if name == "fitModel":
            if fit_probability is None:
                raise ValueError("the configuration uses the fit model as a component, but no probability was given")
            ratio, parts = fit_probability, [(fit_probability, f"fit model: {fit_probability:.0%} likely to convert")]
        elif name == "recency":
            ratio, parts = recency(lead, config, now)
        else:
            ratio, parts = _RULES[name](lead, config)
        share = weight * scale
        raw[name] = share * ratio
        reasons.extend(Reason(name, share * part, text) for part, text in parts if weight > 0)
    score, components = whole_points(raw)
    return ScoreResult(score, components, band(score, config), tuple(reasons))
