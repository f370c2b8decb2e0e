-- An import that was not undone kept the previous values of every lead it updated (import_updates: the whole row,
-- ~1.7 KB a lead, a person's former email and phone among them) until the lead was deleted. The leads retention
-- policy now removes them with the other traces of imports as old as it (clear_import_traces); the import records
-- when, so that undoing it says why it can no longer be undone.
ALTER TABLE imports ADD COLUMN snapshots_removed_at timestamptz;
