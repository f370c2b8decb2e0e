-- When an import last wrote leads (set by each chunk's commit, in the transaction that wrote them, so it equals
-- the updated_at the chunk gave its leads). An import's undo compares the leads it wrote against it: a lead
-- written afterwards (another import, a bulk edit, enrichment, a CRM pull) would lose that change, so the undo
-- is refused unless forced (lib/store/imports.py, undo_import). Imports made before this column fall back to
-- their completed_at.
ALTER TABLE imports ADD COLUMN last_write_at timestamptz;
