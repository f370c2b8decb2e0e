"""The scoring configuration: one structure for the YAML file, the Dagster run config and the PRD's POST /score body.

Keys are camelCase as in the PRD (``dataCompleteness``, ``companyFit``). A file is laid over the shipped
``default.yaml`` (mappings merged key by key, lists replaced), so it may set only what it changes (e.g. only
``thresholds: {mql: 40}``); an unknown key, a wrong type or an impossible value is
rejected with a message naming the key (``engagement.signals[2].steps[0].min: ...``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.fields import CANONICAL_FIELDS
from leads_pipeline.lib.wording import written_number

DEFAULT_CONFIG_FILE = Path(__file__).resolve().parents[2] / "data" / "scoring" / "default.yaml"
CUSTOM_PREFIX = "custom."
EXTRA_FIELDS = ("stage", "created_at", "updated_at")
"""Lead columns a rule may read besides the canonical fields."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


def check_field_path(path: str) -> str:
    """A field a rule reads: a canonical lead field, a lead column such as ``updated_at``, or ``custom.<key>``."""
    if path.startswith(CUSTOM_PREFIX) and len(path) > len(CUSTOM_PREFIX):
        return path
    if path in CANONICAL_FIELDS or path in EXTRA_FIELDS:
        return path
    raise ValueError(
        f"unknown lead field {path!r}; use a canonical field ({', '.join(CANONICAL_FIELDS)}), "
        f"one of {', '.join(EXTRA_FIELDS)}, or custom.<column> for an imported custom column"
    )


class Weights(_Section):
    """Relative weights of the components; they are scaled to sum to 100 points."""

    data_completeness: Annotated[float, Field(ge=0)] = 20
    company_fit: Annotated[float, Field(ge=0)] = 35
    engagement: Annotated[float, Field(ge=0)] = 30
    recency: Annotated[float, Field(ge=0)] = 15


class Thresholds(_Section):
    """Scores at which a lead becomes a marketing (MQL) and a sales (SQL) qualified lead."""

    mql: Annotated[float, Field(ge=0, le=100)] = 50
    sql: Annotated[float, Field(ge=0, le=100)] = 75

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.mql > self.sql:
            raise ValueError(f"mql ({written_number(self.mql)}) must not be above sql ({written_number(self.sql)})")
        return self


class Bands(_Section):
    """Score bands: ``hot`` from this score up, ``warm`` from this score up, ``cold`` below. Default: the
    thresholds (warm = MQL, hot = SQL)."""

    hot: Annotated[float | None, Field(ge=0, le=100)] = None
    warm: Annotated[float | None, Field(ge=0, le=100)] = None


class Stages(_Section):
    """``regression``: whether a falling score moves an automatically qualified lead back down (a stage a person
    set is never lowered automatically)."""

    regression: bool = False


_DEFAULT_COMPLETENESS: dict[str, float] = {
    "email": 3,
    "phone": 2,
    "first_name": 1,
    "last_name": 1,
    "title": 2,
    "company": 2,
    "company_domain": 1,
    "linkedin_url": 1,
    "industry": 1,
    "employee_count": 1,
    "country": 1,
}


class Completeness(_Section):
    """Fields that make a lead usable, each with its weight; the component is the weighted share present."""

    fields: dict[str, float] = Field(default_factory=lambda: dict(_DEFAULT_COMPLETENESS))

    @model_validator(mode="after")
    def _valid(self) -> Completeness:
        for path, weight in self.fields.items():
            check_field_path(path)
            if weight < 0:
                raise ValueError(f"fields.{path}: weight must be 0 or more; got {written_number(weight)}")
        if self.fields and not any(self.fields.values()):
            raise ValueError("fields: at least one weight must be above 0")
        return self


class Range(_Section):
    """An inclusive numeric range; either end may be left open."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({written_number(self.min)}) must not be above max ({written_number(self.max)})")
        return self

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.min:,.0f}-{self.max:,.0f}"
        return f"{self.min:,.0f}+" if self.min is not None else f"up to {self.max:,.0f}"


FIT_CRITERIA = (
    "industries",
    "employees",
    "revenue",
    "countries",
    "titles",
    "seniorities",
    "departments",
    "technologies",
)


TEXT_CRITERIA: dict[str, str] = {
    "industries": "industry",
    "countries": "country",
    "seniorities": "seniority",
    "departments": "department",
}
"""The ICP criteria a lead's field must equal one of (ignoring case), with that field."""


class CompanyFit(_Section):
    """The ideal customer profile. Each non-empty criterion counts with its weight (default 1); a lead whose
    value is unknown does not match it. Text matches ignore case; ``titles`` are keywords found in the title."""

    industries: list[str] = Field(default_factory=list)
    employees: list[Range] = Field(default_factory=list)
    revenue: list[Range] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    titles: list[str] = Field(default_factory=list)
    seniorities: list[str] = Field(default_factory=list)
    departments: list[str] = Field(default_factory=list)
    technologies: list[str] = Field(default_factory=list)
    weights: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid(self) -> CompanyFit:
        for key, weight in self.weights.items():
            if key not in FIT_CRITERIA:
                raise ValueError(f"weights.{key}: unknown criterion; expected one of {', '.join(FIT_CRITERIA)}")
            if weight < 0:
                raise ValueError(f"weights.{key}: weight must be 0 or more; got {written_number(weight)}")
        for country in self.countries:
            if len(country) != 2 or not country.isalpha():
                raise ValueError(f"countries: {country!r} is not an ISO 3166 alpha-2 code such as US or DE")
        return self

    def criterion_weight(self, criterion: str) -> float:
        return self.weights.get(criterion, 1.0)

    @functools.cached_property
    def folded(self) -> dict[str, frozenset[str]]:
        """The text criteria's options case-folded, once per configuration instead of once per lead scored."""
        return {name: frozenset(o.casefold() for o in getattr(self, name)) for name in TEXT_CRITERIA}

    @functools.cached_property
    def folded_titles(self) -> dict[str, str]:
        """The title keywords case-folded, each with the keyword as written (the first of any spelled alike)."""
        keywords: dict[str, str] = {}
        for keyword in self.titles:
            keywords.setdefault(keyword.casefold(), keyword)
        return keywords

    @functools.cached_property
    def folded_technologies(self) -> dict[str, str]:
        """The technologies case-folded, each with the name as written."""
        return {t.casefold(): t for t in self.technologies}


class Step(_Section):
    """Points for a numeric value of at least ``min`` (the highest step reached counts)."""

    min: float
    points: float


class Signal(_Section):
    """One engagement signal: a numeric field scored by ``steps`` or a categorical one scored by ``values``.
    ``default``: points for a value below every step or not listed; ``missing``: points when the field is empty."""

    field: str
    label: str | None = None
    steps: list[Step] | None = None
    values: dict[str, float] | None = None
    default: float = 0
    missing: float = 0

    @model_validator(mode="after")
    def _valid(self) -> Signal:
        check_field_path(self.field)
        if (self.steps is None) == (self.values is None):
            raise ValueError("give exactly one of steps (numeric field) or values (categorical field)")
        if self.steps is not None and not self.steps:
            raise ValueError("steps: give at least one {min, points} step")
        return self

    @property
    def name(self) -> str:
        return self.label or self.field.removeprefix(CUSTOM_PREFIX)

    @functools.cached_property
    def folded_values(self) -> dict[str, float]:
        """``values`` keyed by their case-folded text (categorical matches ignore case), computed once."""
        return {k.casefold(): v for k, v in (self.values or {}).items()}

    def best_points(self) -> float:
        options = [s.points for s in self.steps] if self.steps is not None else list((self.values or {}).values())
        return max([*options, self.default, self.missing, 0.0])


class Engagement(_Section):
    """Engagement signals; the component is their points over ``maxPoints`` (default: the sum of each signal's
    best), capped to 0..1. Negative points (an unsubscribe, a bounce) are allowed."""

    signals: list[Signal] = Field(default_factory=list)
    max_points: Annotated[float | None, Field(gt=0)] = None

    @functools.cached_property
    def full_points(self) -> float:
        return self.max_points if self.max_points is not None else sum(s.best_points() for s in self.signals)


class Recency(_Section):
    """Exponential decay by age: of the lead's data (last update or enrichment) and, when ``activityField`` is
    set, of the last activity. ``activityShare`` is the activity's part of the component."""

    data_half_life_days: Annotated[float, Field(gt=0)] = 180
    activity_field: str | None = None
    activity_half_life_days: Annotated[float, Field(gt=0)] = 30
    activity_share: Annotated[float, Field(ge=0, le=1)] = 0.5

    @model_validator(mode="after")
    def _valid(self) -> Recency:
        if self.activity_field is not None:
            check_field_path(self.activity_field)
        return self


class ModelUse(_Section):
    """The learned fit model: ``off``; ``component`` adds its probability as a component of ``weight``;
    ``replace`` makes the score the probability x 100. ``version`` pins a model (default: the newest)."""

    mode: Literal["off", "component", "replace"] = "off"
    weight: Annotated[float, Field(ge=0)] = 25
    version: str | None = None


class ScoringConfig(_Section):
    """The whole scoring configuration."""

    weights: Weights = Weights()
    thresholds: Thresholds = Thresholds()
    bands: Bands = Bands()
    stages: Stages = Stages()
    completeness: Completeness = Completeness()
    company_fit: CompanyFit = CompanyFit()
    engagement: Engagement = Engagement()
    recency: Recency = Recency()
    model: ModelUse = ModelUse()

    @model_validator(mode="after")
    def _valid(self) -> ScoringConfig:
        total = sum(self.component_weights().values())
        if total <= 0:
            raise ValueError("weights: at least one component weight must be above 0")
        hot, warm = self.band_floors()
        if warm > hot:
            raise ValueError(f"bands: warm ({written_number(warm)}) must not be above hot ({written_number(hot)})")
        return self

    def component_weights(self) -> dict[str, float]:
        """The raw weight of every component in use, by its name in the score's components."""
        weights = {
            "dataCompleteness": self.weights.data_completeness,
            "companyFit": self.weights.company_fit,
            "engagement": self.weights.engagement,
            "recency": self.weights.recency,
        }
        if self.model.mode == "component":
            weights["fitModel"] = self.model.weight
        return weights

    def band_floors(self) -> tuple[float, float]:
        """(hot, warm): the lowest score of each band."""
        hot = self.bands.hot if self.bands.hot is not None else self.thresholds.sql
        warm = self.bands.warm if self.bands.warm is not None else self.thresholds.mql
        return hot, warm

    def as_document(self) -> dict[str, Any]:
        """The configuration as JSON-ready data, with every default filled in (what a version names)."""
        return self.model_dump(mode="json", by_alias=True)

    @property
    def version(self) -> str:
        """A short hash of the complete configuration: equal rules give equal versions."""
        canonical = json.dumps(self.as_document(), sort_keys=True, separators=(",", ":"))
        return "cfg-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


_EXPECTED: Final = {
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "list_type": "expected a list",
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
}
"""Pydantic's error types, in the file's words: "Input should be a valid dictionary or instance of Thresholds"
named a class of this module, not what the key holds."""


_BOUNDS: Final = {
    "greater_than_equal": ("ge", "of at least"),
    "less_than_equal": ("le", "of at most"),
    "greater_than": ("gt", "above"),
    "less_than": ("lt", "below"),
}


def _sections() -> dict[str, type[_Section]]:
    return {section.__name__: section for section in _Section.__subclasses__()}


def _expected_mapping(class_name: str) -> str:
    section = _sections().get(class_name)
    if section is None:
        return "expected a mapping"
    keys = [info.alias or name for name, info in section.model_fields.items()]
    return f"expected a mapping of {', '.join(keys)}"


def _describe(error: dict[str, Any]) -> str:
    location = ""
    for part in error["loc"]:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key; check its spelling against the documented keys (camelCase)"
    elif error["type"] == "model_type":
        message = _expected_mapping(str(error.get("ctx", {}).get("class_name", "")))
    elif error["type"] in _EXPECTED:
        message = _EXPECTED[error["type"]]
    elif error["type"] == "literal_error":
        message = f"expected {error['ctx']['expected']}"
    elif error["type"] in _BOUNDS:
        bound, words = _BOUNDS[error["type"]]
        message = f"expected a number {words} {written_number(float(error['ctx'][bound]))}"
    if error["type"] not in ("value_error", "extra_forbidden") and isinstance(error.get("input"), str | int | float):
        # pydantic's own words ("Input should be greater than or equal to 0") did not say what the file held
        message += f", got {error['input']!r}"  # problems are joined by "; "
    return f"{location}: {message}" if location else message


def parse_config(document: Any, *, source: str = "scoring configuration") -> ScoringConfig:
    """Validate a configuration document; the error names the source and the first bad key."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigurationError(f"{source}: expected a mapping of sections (weights, thresholds, ...)")
    try:
        return ScoringConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors()[:3])  # type: ignore[arg-type]
        raise ConfigurationError(f"{source}: {problems}") from None


def read_yaml_file(path: Path, what: str) -> Any:
    """The document in a YAML file; an unreadable file or bad YAML is one line naming the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:  # a binary file given by mistake was a traceback
        raise ConfigurationError(f"{path}: the {what} is not UTF-8 text (byte {exc.start + 1})") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc


def merge_documents(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` laid over it: mappings merge key by key (``thresholds: {mql: 40}`` keeps
    ``sql``), anything else (lists, numbers, text) replaces. A change's key matches a base key spelled in
    camelCase (``company_fit`` replaces ``companyFit``), as the configuration accepts both spellings."""
    merged = dict(base)
    for key, value in changes.items():
        existing = key if key in merged else to_camel(key) if isinstance(key, str) else key
        previous = merged.pop(existing, None)
        if isinstance(previous, dict) and isinstance(value, dict):
            value = merge_documents(previous, value)
        merged[key] = value
    return merged


def load_config(path: Path | None = None) -> ScoringConfig:
    """Read a YAML configuration file laid over the shipped default (``default.yaml``), so a file holds only
    what it changes: a section or key it leaves out keeps the shipped value (see ``merge_documents``)."""
    default = read_yaml_file(DEFAULT_CONFIG_FILE, "scoring configuration")
    if path is None or path.resolve() == DEFAULT_CONFIG_FILE:
        return parse_config(default, source=str(DEFAULT_CONFIG_FILE))
    document = read_yaml_file(path, "scoring configuration")
    if document is not None and not isinstance(document, dict):
        raise ConfigurationError(f"{path}: expected a mapping of sections (weights, thresholds, ...)")
    return parse_config(merge_documents(default, document or {}), source=str(path))
