"""The one partitioning of the pipeline: a batch is an imported file or a selection of leads to (re-)enrich."""

import dagster as dg

BATCHES = "batches"
batches = dg.DynamicPartitionsDefinition(name=BATCHES)
