-- Each `leads score --list` run kept its selection's members for good (batch_leads: ~200 bytes a lead a run), though
-- its own scores check is their last reader. A run now releases them when it ends; these are those of runs before.
DELETE FROM batch_leads m USING batches b WHERE b.id = m.batch_id AND b.kind = 'selection' AND b.id LIKE 'score-%';
