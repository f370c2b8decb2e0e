"""``import_leads``: the drop folder's runs, ``batch_leads`` alone, run in the run's own process.

Under the project's executor (``defs/executor.py``) each step runs in a process of its own, which loads the code
location again: for an import, the run's only step, a second Python process and ~3.5 s of CPU and ~5 s of wall
time per dropped file (33 rows: 6.5 s of wall time instead of 1.1). The file's chunks are prepared by worker
processes anyway; terminating the run from the UI interrupts the run's process, so the step, which ends without a
retry on an interrupt. A materialization of ``batch_leads`` launched from the UI keeps the project's executor.
"""

import dagster as dg

from leads_pipeline.defs.imports.assets import batch_leads
from leads_pipeline.defs.partitions import batches

import_job = dg.define_asset_job(
    "import_leads",
    selection=[batch_leads],
    partitions_def=batches,
    executor_def=dg.in_process_executor,
    description="Imports a file dropped in the inbox into its batch (the inbox sensor's runs), in the run's process.",
)
