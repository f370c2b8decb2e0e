"""The ``leads`` command's sub-commands, one module per area; :mod:`leads_pipeline.cli` assembles them."""
