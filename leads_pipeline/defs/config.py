"""The base of the assets' run configs: each field's docstring is its description in the Dagster UI.

The launchpad shows a config field's description beside it (and in its autocompletion); Dagster takes it from the
pydantic field, which reads the attribute docstring below the field only when asked to. Without this, every field
of every asset showed without a word, the few docstrings written for them read by nobody but the code's readers."""

from typing import Final

import dagster as dg
import pydantic

DESCRIBED_FIELDS: Final = pydantic.ConfigDict(use_attribute_docstrings=True)


class RunConfig(dg.Config):
    """A run config whose fields' docstrings are their descriptions in the UI."""

    model_config = DESCRIBED_FIELDS
