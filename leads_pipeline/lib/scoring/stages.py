"""Qualification stages: new -> mql -> sql, moved by the score crossing the thresholds.

Automatic progression only moves a lead up the ladder. A falling score moves it down only when the configuration
allows regression, and never below a stage a person set. Stages off the ladder (``customer``, ``disqualified``,
anything a person or a CRM set) are never changed automatically.
"""

from __future__ import annotations

from typing import Literal

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.scoring.config import ScoringConfig

LADDER = ("new", "mql", "sql")
MANUAL_STAGES = (*LADDER, "customer", "disqualified", "nurture")
StageSource = Literal["auto", "manual"]


def stage_for_score(score: float, config: ScoringConfig) -> str:
    if score >= config.thresholds.sql:
        return "sql"
    return "mql" if score >= config.thresholds.mql else "new"


def next_stage(current: str, source: StageSource, score: float, config: ScoringConfig) -> str:
    """The lead's stage after scoring ``score``, from ``current`` last set by ``source``."""
    if current not in LADDER:
        return current
    target = stage_for_score(score, config)
    if LADDER.index(target) > LADDER.index(current):
        return target
    if LADDER.index(target) < LADDER.index(current) and config.stages.regression and source == "auto":
        return target
    return current


def check_manual_stage(stage: str) -> str:
    """A stage a person may set, normalized to lower case."""
    normalized = stage.strip().casefold()
    if normalized not in MANUAL_STAGES:
        raise ConfigurationError(f"unknown stage {stage!r}; expected one of {', '.join(MANUAL_STAGES)}")
    return normalized
