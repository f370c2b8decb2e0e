"""The learned fit model: a scikit-learn classifier of "this lead converts", trained on labelled outcomes.

Features are lead field paths (``source``, ``country``, ``custom.TotalVisits``), so a model trained on a labelled
file scores stored leads that carry the same fields. A labelled file's columns are mapped onto field paths the
way an import maps them (a mapping file, else ``custom.<header>``); ``country`` is normalized to ISO codes as
the importer does. Numeric columns are those whose filled values all parse as numbers; everything else is
categorical, with placeholder values such as "Select" treated as unfilled; text identifiers are left out.

The classifier averages the probabilities of two gradient boosting models that see categories differently:
scikit-learn's histogram gradient boosting with native categorical splits (:data:`TREE_SETTINGS`) and CatBoost,
which encodes categories by ordered target statistics (:class:`OrderedBoosting`). Measured by 5-fold CV on the
70% training parts of seeds 0-4 of Leads.csv (25 folds; the fold-to-fold SD of a paired accuracy difference is
0.002-0.005), accuracy / AUC with all columns and at signup:

- this average: 0.9522 / 0.9867 and 0.8192 / 0.8853;
- the histogram model alone: 0.9511 / 0.9853 and 0.8135 / 0.8790; CatBoost alone: 0.9500 / 0.9862;
- the model before this one, the histogram model averaged with a regularised setting of it (learning rate 0.05 x
  300, 15 leaves, l2 1.0): 0.9509 / 0.9858 and 0.8161 / 0.8809;
- that regularised setting added as a third part: 0.9519 / 0.9867 and 0.8185 / 0.8846 (nothing gained); CatBoost
  with its default 1,000 trees as the third part: 0.9520 / 0.9867 at twice the time; as the third part instead,
  histogram trees on target-encoded categories (scikit-learn's ``TargetEncoder``): 0.9513 / 0.9861; LightGBM
  alone: 0.9497 / 0.9851;
- this average with CatBoost trees of depth 4 or 8 instead of 6: 0.9514 / 0.9865, 0.9523 / 0.9867 (three times the
  time); weighted 2:1 or 1:2 instead of equally: 0.9524 / 0.9865, 0.9512 / 0.9867; CatBoost without category
  combinations (``max_ctr_complexity=1``): 0.9525 / 0.9865 and 0.8185 / 0.8845 in less than half the time (the
  combinations carry the signup figures); one-hot columns up to 10 categories: 0.9524 / 0.9865.

Measured on the histogram model and not kept (accuracy, or accuracy / AUC; alone: 0.9511 / 0.9853): an average with
a logistic regression on one-hot and binned features (0.947 vs 0.949 alone) and "Select" as a category of its own
(0.949), both on an earlier split; no pooling of rare categories (0.9505), a decision threshold chosen by
out-of-fold predictions on the training part instead of 0.5 (0.9503), the "01.High"-style Asymmetrique indices as
ordinal numbers (0.9505), more iterations at a lower learning rate (0.9511 at 0.05 x 300, 0.9507 at 0.03 x 500), l2
regularization 1.0 (0.9502), a count of filled fields as a feature (0.9513), depth 4 or 8 (0.9492, 0.9502), 20 leads
per leaf (0.9506), 63 bins (0.9503), an average of 5 fits on bootstrap resamples (0.9503), of 5 or 10 fits on random
70% or 50% column subsets (0.9510-0.9516, AUC +0.0005 at five to ten times the training time), a model of depth 4 or
of 50% features per split added to the model before this one (0.9509 / 0.9859), a monotonic increase in "Total Time
Spent on Website" (0.9513 / 0.9853), balanced class weights (0.9503 / 0.9851), extremely randomized trees on one-hot
columns alone (0.9469 / 0.9832) or in the average (0.9517 / 0.9860 at seventeen times the training time). "Lead
Number" (signup order) is worth keeping: without it 0.9476. An exact copy of a held-out lead's columns is in the
training part for 406 of the 2,772 held-out leads of seed 7; an off-the-shelf model already gets 97.5% of them
right, and their majority label put in its place leaves the accuracy as it is. Conversion hardly follows signup
order beyond what the columns say (label autocorrelation by Lead Number 0.04 at lag 1), so neighbouring leads'
labels add nothing.

On the same 25 folds, measured against this average and not kept (paired difference in accuracy / AUC, fold SE
~0.0003 / ~0.00006): a logistic regression stacked on the two parts' inner out-of-fold logits (-0.0006 / -0.0001,
five times the training), rank or log-odds averaging (AUC -0.0001), categories case-folded (+0.0002 / +0.0001: five
rows differ), CatBoost with l2 10 (-0.0009 / -0.0002), random strength 2 (-0.0006 / 0), learning rate 0.05 x 1,000
(+0.0006 / +0.0001, twice the time), Lossguide trees of 31 leaves (-0.0004 / -0.0002), depth 7 (+0.0004 / +0.0001,
but AUC -0.0004 at signup), LightGBM as a third part (+0.0002 / +0.0001), ratio features in both parts (time per
visit, page views, time per page view: -0.0008 / +0.0001) and CatBoost as an average over three seeds
(-0.0001 / +0.0001, three times the training).

Later, on the same folds against this average (paired difference in accuracy / AUC +- SE; a change is kept at +2 SE
in accuracy with AUC not worse, here or at signup): case-folded categories with CatBoost at 0.05 x 1,000 (+0.0006 +-
0.0003 / +0.0001 +- 0.0001, 1.9 SE), the same with LightGBM as a third part (+0.0003 +- 0.0004 / 0.0000) and with
one-hot CatBoost columns up to 4 categories (+0.0008 +- 0.0002 / -0.0001 +- 0.0001, but at signup -0.0007 +- 0.0007
/ -0.0012 +- 0.0003: the slower learning rate costs that AUC, -0.0012 +- 0.0002 alone); CatBoost with one-hot up to
4 alone (+0.0003 +- 0.0003 / 0.0000; with case folding -0.0002 +- 0.0004 / 0.0000), Depthwise trees (-0.0001 +-
0.0004 / -0.0003 +- 0.0001), 1,024 borders (-0.0006 +- 0.0003 / +0.0001 +- 0.0001), l2 1 (+0.0001 +- 0.0002 /
+0.0001 +- 0.00004); a random forest (500 trees on ordinal categories, 0.9288 / 0.9752 alone) as a third part
(-0.0003 +- 0.0004 / -0.0006 +- 0.0002), LightGBM with its defaults as a third part (-0.0002 +- 0.0004 / 0.0000);
category crosses for the histogram model: Tags x Lead Quality (+0.0005 +- 0.0005 / +0.0002 +- 0.0001; +0.0009 +-
0.0005 / +0.0002 +- 0.0001 with case folding and CatBoost at 0.05 x 1,000), Tags x Last Notable Activity added to it
(-0.0003 +- 0.0006 / +0.0001), Tags x Last Activity (-0.0007 +- 0.0005 / +0.0001), Lead Quality x Last Notable
Activity (-0.0011 +- 0.0005 / -0.0001), Tags x Lead Origin (-0.0003 +- 0.0005 / 0.0000).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from leads_pipeline.lib.errors import ConfigurationError, InputFileError
from leads_pipeline.lib.normalize import country_codes
from leads_pipeline.lib.scoring.config import CUSTOM_PREFIX, check_field_path
from leads_pipeline.lib.scoring.rules import LeadInput
from leads_pipeline.lib.wording import counted

PLACEHOLDERS = frozenset({"", "select", "n/a", "na", "none", "null", "-"})
POSITIVE_LABELS = frozenset({"1", "true", "yes", "y", "converted", "won", "closed won"})
NEGATIVE_LABELS = frozenset({"0", "false", "no", "n", "not converted", "lost", "closed lost"})
MIN_ROWS = 50


@dataclass(frozen=True)
class FeatureSpec:
    """Which lead fields the model reads, and how."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def as_json(self) -> dict[str, list[str]]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical)}


def clean_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if text.casefold() in PLACEHOLDERS else text


def as_number(value: Any) -> float:
    text = clean_text(value)
    if text is None:
        return math.nan
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return math.nan


def feature_frame(rows: Sequence[Mapping[str, Any]], spec: FeatureSpec) -> pd.DataFrame:
    """The model's input: one row per lead (a mapping of field path to value), typed by the spec."""
    data: dict[str, Any] = {}
    for path in spec.numeric:
        data[path] = np.array([as_number(r.get(path)) for r in rows], dtype=float)
    for path in spec.categorical:
        data[path] = pd.Series([clean_text(r.get(path)) for r in rows], dtype=object)
    return pd.DataFrame(data, columns=list(spec.columns))


TREE_SETTINGS: dict[str, Any] = {"learning_rate": 0.1, "max_depth": 6, "min_samples_leaf": 5}
"""The histogram gradient boosting model: deep, fast-learning trees, which suit data with strong single columns
(Tags, Lead Quality)."""
TREES = f"depth-{TREE_SETTINGS['max_depth']}"

ORDERED_BOOSTING_ITERATIONS = 500
"""CatBoost with 500 trees: its default of 1,000 gave the same CV figures in the average at twice the time."""
ORDERED_BOOSTING = f"catboost-{ORDERED_BOOSTING_ITERATIONS}"


def _estimator(spec: FeatureSpec, seed: int) -> VotingClassifier:
    """The average of the probabilities of the two models."""
    return VotingClassifier(
        [(TREES, _trees(spec, seed)), (ORDERED_BOOSTING, _ordered_boosting(spec, seed))], voting="soft"
    )


def _encoding(spec: FeatureSpec, categories: Any) -> ColumnTransformer:
    """Numeric columns as they are (unfilled: NaN), categorical ones through ``categories``."""
    return ColumnTransformer(
        [("numeric", "passthrough", list(spec.numeric)), ("categorical", categories, list(spec.categorical))]
    )


def _trees(spec: FeatureSpec, seed: int) -> Pipeline:
    """Gradient-boosted trees with native categorical splits (rare categories pooled): they find the
    interactions between source, activity and profile that a linear model misses."""
    from sklearn.preprocessing import OrdinalEncoder

    # unfilled (None) is a category of its own, as "(unfilled)" is for the ordered boosting
    categories = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, min_frequency=5)
    trees = HistGradientBoostingClassifier(
        categorical_features=[False] * len(spec.numeric) + [True] * len(spec.categorical),
        random_state=seed,
        **TREE_SETTINGS,
    )
    return Pipeline([("encode", _encoding(spec, categories)), ("trees", trees)])


def _ordered_boosting(spec: FeatureSpec, seed: int) -> Pipeline:
    """CatBoost on the categories as text, an unfilled one as a category of its own (it takes no missing text)."""
    unfilled = SimpleImputer(missing_values=None, strategy="constant", fill_value="(unfilled)")
    boosting = OrderedBoosting(categorical=len(spec.categorical), random_seed=seed)
    return Pipeline([("encode", _encoding(spec, unfilled)), ("boosting", boosting)])


class OrderedBoosting(ClassifierMixin, BaseEstimator):
    """CatBoost: symmetric trees over categories encoded by ordered target statistics (each lead's category is
    encoded from the outcomes of leads before it in a random order, never its own), a different view of the
    same columns from the histogram models' category splits, so their errors partly cancel in the average.

    Takes the last ``categorical`` columns as categories. A scikit-learn estimator of its own because
    ``CatBoostClassifier`` does not survive ``clone()`` (which the average calls) with categorical columns set.
    """

    def __init__(self, categorical: int = 0, iterations: int = ORDERED_BOOSTING_ITERATIONS, random_seed: int = 0):
        self.categorical = categorical
        self.iterations = iterations
        self.random_seed = random_seed

    def fit(self, features: np.ndarray, labels: np.ndarray) -> OrderedBoosting:
        from catboost import CatBoostClassifier

        width = features.shape[1]
        self.model_ = CatBoostClassifier(
            iterations=self.iterations,
            cat_features=list(range(width - self.categorical, width)),
            random_seed=self.random_seed,
            verbose=False,
            allow_writing_files=False,  # no catboost_info/ folder in the working directory
        ).fit(features, labels)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(features))


def calibration_table(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per probability bin: mean predicted probability vs observed conversion rate (a reliability diagram)."""
    table = []
    edges = np.linspace(0, 1, bins + 1)
    for i in range(bins):
        upper = probabilities <= edges[i + 1] if i == bins - 1 else probabilities < edges[i + 1]
        mask = (probabilities >= edges[i]) & upper
        if mask.any():
            table.append(
                {
                    "from": round(float(edges[i]), 2),
                    "to": round(float(edges[i + 1]), 2),
                    "leads": int(mask.sum()),
                    "predicted": round(float(probabilities[mask].mean()), 4),
                    "observed": round(float(labels[mask].mean()), 4),
                }
            )
    return table


def evaluate(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Accuracy (at 0.5), ROC AUC, Brier score, log loss and expected calibration error."""
    table = calibration_table(labels, probabilities)
    ece = sum(row["leads"] * abs(row["predicted"] - row["observed"]) for row in table) / max(1, len(labels))
    both = len(set(labels.tolist())) == 2
    return {
        "accuracy": round(float(accuracy_score(labels, probabilities >= 0.5)), 4),
        "auc": round(float(roc_auc_score(labels, probabilities)), 4) if both else None,
        "brier": round(float(brier_score_loss(labels, probabilities)), 4),
        "log_loss": round(float(log_loss(labels, probabilities, labels=[0, 1])), 4),
        "calibration_error": round(float(ece), 4),
        "calibration": table,
        "rows": len(labels),
        "positive_rate": round(float(labels.mean()), 4),
    }


@dataclass
class FitModel:
    """A trained model with its features and version: what scoring loads to compute fit probabilities."""

    version: str
    spec: FeatureSpec
    estimator: Any
    metrics: dict[str, Any] = field(default_factory=dict)

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not rows:
            return np.zeros(0)
        return np.asarray(self.estimator.predict_proba(feature_frame(rows, self.spec))[:, 1], dtype=float)

    @property
    def features(self) -> tuple[str, ...]:
        return self.spec.columns

    def probabilities(self, rows: Sequence[Mapping[str, Any]]) -> list[float]:
        return [float(p) for p in self.predict(rows)]

    def serialize(self) -> bytes:
        """Pickled estimator. Only ever loaded back from the project's own database."""
        return pickle.dumps(self.estimator, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FitModel:
        features = row["features"]
        spec = FeatureSpec(tuple(features["numeric"]), tuple(features["categorical"]))
        return cls(row["version"], spec, pickle.loads(row["model"]), row["metrics"])  # our own table only


@dataclass(frozen=True)
class LabelledData:
    rows: list[dict[str, Any]]
    labels: np.ndarray
    source: str


def read_labelled_file(
    path: Path,
    label_column: str,
    *,
    mapping: Mapping[str, str | None] | None = None,
    exclude: Sequence[str] = (),
) -> LabelledData:
    """A CSV of past leads with an outcome column, as rows of field path -> value.

    ``mapping`` sends a column to a lead field path (or ``None`` to drop it); other columns become
    ``custom.<header>``. A label that is neither a yes nor a no names its line.
    """
    mapping = dict(mapping or {})
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputFileError(path, f"cannot read the labelled file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise InputFileError(path, "not UTF-8 text; save it as UTF-8 CSV") from exc
    reader = csv.DictReader(io.StringIO(text))
    headers = reader.fieldnames or []
    if label_column not in headers:
        raise InputFileError(path, f"no label column {label_column!r}; columns are {', '.join(headers)}")
    for column, target in mapping.items():
        if column not in headers:
            raise ConfigurationError(f"mapping: {column!r} is not a column of {path.name}")
        if target is not None:
            try:
                check_field_path(target)
            except ValueError as exc:
                raise ConfigurationError(f"mapping.{column}: {exc}") from None
    targets = {
        column: mapping.get(column, CUSTOM_PREFIX + column)
        for column in headers
        if column != label_column and column not in exclude
    }
    rows: list[dict[str, Any]] = []
    labels: list[int] = []
    for line, record in enumerate(reader, start=2):
        raw = str(record.get(label_column) or "").strip().casefold()
        if raw in POSITIVE_LABELS:
            labels.append(1)
        elif raw in NEGATIVE_LABELS:
            labels.append(0)
        else:
            raise InputFileError(
                path, f"line {line}, column {label_column!r}: expected an outcome such as 1/0 or yes/no, got {raw!r}"
            )
        rows.append({target: record.get(column) for column, target in targets.items() if target is not None})
    countries = [r.get("country") for r in rows]
    if any(c is not None for c in countries):
        codes = country_codes(pd.Series(countries, dtype="string")).values
        for row, code in zip(rows, codes, strict=True):
            row["country"] = None if pd.isna(code) else code
    return LabelledData(rows, np.array(labels, dtype=int), str(path))


IDENTITY_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "full_name",
        "email",
        "phone",
        "mobile_phone",
        "linkedin_url",
        "street",
        "postal_code",
        "notes",
        "company",
        "company_domain",
        "website",
        "stage",
        "created_at",
        "updated_at",
    }
)
"""Lead fields that identify a lead rather than describe it: never model features."""


def labelled_leads(
    leads: Sequence[LeadInput], label_field: str, *, source: str, exclude: Sequence[str] = ()
) -> LabelledData:
    """Stored leads whose outcome is in ``label_field`` (e.g. ``custom.Converted``, filled by a CRM pull) as
    labelled rows; leads without a recognizable outcome are left out. ``exclude`` names fields to leave out, as
    field paths (``custom.Tags``) or as the column an import kept them under (``Tags``)."""
    left_out = {label_field, *exclude, *(CUSTOM_PREFIX + name for name in exclude)}
    rows: list[dict[str, Any]] = []
    labels: list[int] = []
    for lead in leads:
        outcome = str(lead.value(label_field) or "").strip().casefold()
        if outcome not in POSITIVE_LABELS and outcome not in NEGATIVE_LABELS:
            continue
        row = {k: v for k, v in lead.columns.items() if k not in IDENTITY_FIELDS and v is not None}
        row.update({CUSTOM_PREFIX + k: v for k, v in lead.custom.items()})
        rows.append({k: v for k, v in row.items() if k not in left_out})
        labels.append(1 if outcome in POSITIVE_LABELS else 0)
    return LabelledData(rows, np.array(labels, dtype=int), source)


IDENTIFIER_SHARE = 0.9
"""A text column with distinct values on this share of its filled rows identifies leads (a prospect id, a UUID):
each value is seen once, so there is nothing to learn from it."""


def infer_spec(rows: Sequence[Mapping[str, Any]], *, min_filled: float = 0.0) -> FeatureSpec:
    """Numeric where every filled value parses as a number; categorical otherwise. Columns with one value or
    none, and text identifiers (see :data:`IDENTIFIER_SHARE`), are left out: nothing to learn from them."""
    numeric: list[str] = []
    categorical: list[str] = []
    paths = sorted({path for row in rows for path in row})
    for path in paths:
        values = [clean_text(row.get(path)) for row in rows]
        filled = [v for v in values if v is not None]
        if len(set(filled)) < 2 or len(filled) < min_filled * len(values):
            continue
        if all(not math.isnan(as_number(v)) for v in filled):
            numeric.append(path)
        elif len(set(filled)) < IDENTIFIER_SHARE * len(filled):
            categorical.append(path)
    return FeatureSpec(tuple(numeric), tuple(categorical))


def model_version(estimator_bytes: bytes, now: datetime | None = None) -> str:
    """``fit-<UTC time>-<hash of the trained model>``: sortable and unique per training."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"fit-{stamp}-{hashlib.sha256(estimator_bytes).hexdigest()[:8]}"


def fit_and_measure(
    train_rows: Sequence[Mapping[str, Any]],
    train_labels: np.ndarray,
    test_rows: Sequence[Mapping[str, Any]],
    test_labels: np.ndarray,
    spec: FeatureSpec,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit on the training rows and measure on the held-out rows (the fitted model is not kept: the model in use
    is refitted on every row)."""
    estimator = _estimator(spec, seed).fit(feature_frame(train_rows, spec), train_labels)
    probabilities = estimator.predict_proba(feature_frame(test_rows, spec))[:, 1]
    return evaluate(np.asarray(test_labels), probabilities)


def _check_split(data: LabelledData, holdout: float) -> None:
    """Refuses, in one line naming the setting, a split the stratified ``train_test_split`` cannot make: it raised
    scikit-learn's own error, shown with its traceback in the Dagster UI (``holdout: 1.5`` in the launchpad's run
    config; a file with one converted lead). Each part needs one lead of each outcome, as scikit-learn counts the
    parts: the held-out part is ``ceil(holdout * rows)``, the training part the rest."""
    if not 0 < holdout < 1:
        raise ConfigurationError(
            f"holdout: expected a fraction between 0 and 1 (0.3 measures the model on 30% of the outcomes),"
            f" got {holdout}"
        )
    converted = int(data.labels.sum())
    rarer = min(converted, len(data.labels) - converted)
    if rarer < 2:
        outcome = "converted" if converted == rarer else "did not convert"
        raise ConfigurationError(
            f"{data.source}: only {rarer} labelled row {outcome}; training needs at least 2 of each outcome"
            " (one to learn from, one to measure on)"
        )
    held_out = math.ceil(holdout * len(data.rows))
    if min(held_out, len(data.rows) - held_out) < 2:
        raise ConfigurationError(
            f"holdout: {holdout} of {len(data.rows):,} labelled rows holds out {held_out:,} and trains on"
            f" {len(data.rows) - held_out:,}; each part needs at least 2 (one of each outcome)"
        )


def train(data: LabelledData, *, spec: FeatureSpec | None = None, holdout: float = 0.3, seed: int = 0) -> FitModel:
    """Fit on a stratified training part, measure on the held-out part, then refit on everything for use.

    The metrics are those of the held-out part, which chose nothing: the model in use has seen more data, never
    less.
    """
    if len(data.rows) < MIN_ROWS:
        raise ConfigurationError(
            f"{data.source}: {counted(len(data.rows), 'labelled row')}; training needs at least {MIN_ROWS}"
        )
    if len(set(data.labels.tolist())) < 2:
        raise ConfigurationError(f"{data.source}: every outcome is the same; training needs converted and not")
    _check_split(data, holdout)
    spec = spec or infer_spec(data.rows)
    if not spec.columns:
        raise ConfigurationError(f"{data.source}: no column varies; nothing to learn from")
    train_idx, test_idx = train_test_split(
        np.arange(len(data.rows)), test_size=holdout, stratify=data.labels, random_state=seed
    )
    metrics = fit_and_measure(
        [data.rows[i] for i in train_idx],
        data.labels[train_idx],
        [data.rows[i] for i in test_idx],
        data.labels[test_idx],
        spec,
        seed,
    )
    final = _estimator(spec, seed).fit(feature_frame(data.rows, spec), data.labels)
    settings = [name for name, _ in final.estimators]  # the averaged models, as the estimator names them
    metrics.update({"holdout": holdout, "seed": seed, "trained_rows": len(train_idx), "settings": settings})
    model = FitModel("", spec, final, metrics)
    model.version = model_version(model.serialize())
    return model
