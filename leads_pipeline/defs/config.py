"""The base of the assets' run configs: each field's docstring is its description in the Dagster UI.

The launchpad shows a config field's description beside it (and in its autocompletion); Dagster takes it from the
pydantic field, which reads the attribute docstring below the field only when asked to. Without this, every field
of every asset showed without a word, the few docstrings written for them read by nobody but the code's readers."""

import types
from typing import Any, Final, Union, get_args, get_origin

import dagster as dg
import pydantic
from pydantic.fields import FieldInfo

from leads_pipeline.lib.wording import plain_number, written_number

DESCRIBED_FIELDS: Final = pydantic.ConfigDict(use_attribute_docstrings=True)


def out_of_range(name: str, value: float, low: float, high: float | None = None, unit: str = "") -> str | None:
    """What is wrong with a numeric run config setting outside ``low`` to ``high`` (None: no upper bound), in one
    line naming it ("chunk_size must be a number >= 1; got 0"; ``unit``: "of days"), or None. The launchpad takes
    any number for an int or float field: out of range, a setting failed deep in a stage after retries, or bounded
    nothing without a word."""
    if low <= value and (high is None or value <= high):
        return None
    bound = f"from {plain_number(low)} to {plain_number(high)}" if high is not None else f">= {plain_number(low)}"
    return f"{name} must be a number{f' {unit}' if unit else ''} {bound}; got {written_number(value)}"


def _admits_none(field: FieldInfo | None) -> bool:
    """Whether ``None`` is a value of the field (an unknown key is left to the model to judge)."""
    if field is None or field.is_required():
        return True
    annotation = field.annotation
    if annotation is Any or annotation is None or annotation is type(None):
        return True
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


class RunConfig(dg.Config):
    """A run config whose fields' docstrings are their descriptions in the UI."""

    model_config = DESCRIBED_FIELDS

    @pydantic.model_validator(mode="before")
    @classmethod
    def _null_is_the_default(cls, data: Any) -> Any:
        """A field left null is given its default. Dagster makes every field with a default nullable in the run
        config's schema (it offers no way to refuse null at launch), so ``dry_run: null`` in the launchpad passed
        the launch's validation and failed the step ("Input should be a valid boolean") after the run started."""
        if not isinstance(data, dict):
            return data
        return {
            key: value for key, value in data.items() if value is not None or _admits_none(cls.model_fields.get(key))
        }
