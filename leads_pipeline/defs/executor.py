"""The executor of every run the daemon or the UI launches: Dagster's multiprocess executor, with the stages that
spend provider credits run one at a time.

Each paid stage (email and phone contacts, LinkedIn profiles, company profiles) reads what the job's ledger has
already charged each lead when it starts, so that ``max_credits_per_lead`` caps a lead over all the stages of a
job. Started side by side, as the multiprocess executor starts steps that do not depend on each other, every
stage read an empty ledger and a lead could cost the cap once per stage. ``leads enrich`` runs in process, where
steps run one after another anyway. The other steps of a run keep running beside them.

A drop-folder import runs in process (``defs/imports/jobs.py``). Other runs keep this executor: under the
in-process one, terminating a run from the UI interrupts its step in the run's own process, where Dagster retries an
interrupted step by its RetryPolicy, which only ``batch_leads`` declines.
"""

import dagster as dg

SPENDS_CREDITS_TAG = "leads/spends_credits"
"""The op tag of a stage that spends provider credits (its value is ignored)."""

SPENDS_CREDITS = {SPENDS_CREDITS_TAG: "true"}

BACKGROUND_PRIORITY = {"dagster/priority": "-10"}
"""The run tags of the runs the daemon requests by itself (drop-folder imports, the daily rescore). The run queue
starts runs by ``dagster/priority``, higher first, in the order they came otherwise: with no tag, 50 files dropped
at once queued a run launched from the UI or by ``leads`` (priority 0) behind all of their imports, ~30 min. They
rank as ``leads enrich --priority low``."""

executor = dg.multiprocess_executor.configured(
    {"tag_concurrency_limits": [{"key": SPENDS_CREDITS_TAG, "limit": 1}]}, name="multiprocess"
)
