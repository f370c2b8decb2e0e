"""The small world ``make demo`` serves: generated on the fly, the same every time, never stored.

Generating it takes about 0.2 s, so shipping a world file would only add a second copy of the truth that could
drift from the generator. A fixed seed keeps the demo's people, answers and output identical from run to run.
"""

from __future__ import annotations

from pathlib import Path

from leads_pipeline.sandbox.generate import generate_world
from leads_pipeline.sandbox.world import World

DEMO_COMPANIES = 20
DEMO_PEOPLE = 120
DEMO_SEED = 7


def demo_world(data_dir: Path | None = None) -> World:
    """The demo world: ``DEMO_COMPANIES`` companies and ``DEMO_PEOPLE`` people from seed ``DEMO_SEED``.

    ``data_dir`` is a copy of ``shared/data`` (default: beside the checkout, as for ``generate_world``).
    """
    return generate_world(DEMO_COMPANIES, DEMO_PEOPLE, DEMO_SEED, data_dir)
