-- The chunks an import's workers stage for its merge (lib/store/staging.py): an unlogged table per chunk,
-- i<import>_c<chunk> (and i<import>_c<chunk>_folds), which each worker COPYs its prepared chunk into on a
-- connection of its own, beside the merge of earlier chunks; the transaction that merges the chunk drops it. Those
-- of an import that stopped are dropped as it fails, when it resumes, or when another import starts. A schema of
-- their own: the leads schema's tables stay those of the data model (row-level security, the privacy registry),
-- and no role but the pipeline's, which owns it, may use it (the staged values are sealed as in leads).
CREATE SCHEMA IF NOT EXISTS import_staging;
REVOKE ALL ON SCHEMA import_staging FROM PUBLIC;
