-- The Dagster run that last ran an import (the drop folder's, `leads import`'s in-process one), NULL for one
-- recorded before or run outside Dagster. Runs were matched to their import by list and content tags alone: the
-- drop folder took a run that had not reached the import's lock yet for the killed run it resumes, and ended it.
-- The run records itself here once it holds the lock (lib/store/imports.claim_import).
ALTER TABLE imports ADD COLUMN dagster_run_id text;
