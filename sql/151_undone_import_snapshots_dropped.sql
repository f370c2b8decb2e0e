-- An undone import kept the previous values of the leads it updated (import_updates: the whole row, ~1.7 KB a lead,
-- a person's former email and phone among them) for good, though nothing reads them once it is undone: it is not
-- undone again, and no other import's undo looks at it. The undo now deletes them; these are those of imports
-- undone before.
DELETE FROM import_updates u USING imports i WHERE i.id = u.import_id AND i.status = 'undone';
