-- A lead's list is checked once per statement instead of once per row. The foreign key leads.list_id -> lists(id)
-- ran its check (an index probe and a FOR KEY SHARE lock of the same lists row) for every inserted lead: ~0.2 s of
-- every 50k-row import chunk, in the one backend a whole import waits on (auto_explain of a chunk's INSERT; a 1M-row
-- import took 48.6 s with it, 45.7 s without, alternating runs). The triggers below keep what the key guaranteed: no
-- lead names a list that does not exist, and the lists that a writing transaction's leads name stay locked (FOR KEY
-- SHARE) until it ends, so a list cannot be deleted under leads being written to it; deleting a list that still has
-- leads (lists are deleted softly, so only plain SQL does) is refused, as the key's NO ACTION refused it. (A list's
-- id is generated always: no update changes it.)

ALTER TABLE leads DROP CONSTRAINT leads_list_id_fkey;

-- New leads: the lists they name, each locked once; any id without a list is an error naming it.
CREATE FUNCTION leads_inserted_list_check() RETURNS trigger LANGUAGE plpgsql AS
$$ DECLARE
    missing bigint;
BEGIN
    PERFORM 1 FROM lists WHERE id IN (SELECT DISTINCT list_id FROM new_leads) FOR KEY SHARE;
    SELECT n.list_id INTO missing FROM new_leads n
        WHERE NOT EXISTS (SELECT 1 FROM lists l WHERE l.id = n.list_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert into leads names list %, which does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'leads', COLUMN = 'list_id';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER leads_inserted_list_check AFTER INSERT ON leads REFERENCING NEW TABLE AS new_leads
    FOR EACH STATEMENT EXECUTE FUNCTION leads_inserted_list_check();

-- A lead moved to another list (rare, and row by row as the key did it).
CREATE FUNCTION leads_moved_list_check() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    PERFORM 1 FROM lists WHERE id = NEW.list_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'update of lead % names list %, which does not exist', NEW.id, NEW.list_id
            USING ERRCODE = 'foreign_key_violation', TABLE = 'leads', COLUMN = 'list_id';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER leads_moved_list_check AFTER UPDATE OF list_id ON leads
    FOR EACH ROW WHEN (OLD.list_id IS DISTINCT FROM NEW.list_id) EXECUTE FUNCTION leads_moved_list_check();

-- A list that still has leads keeps its row. The row lock this waits for is the one a writer of its leads holds,
-- so the leads it sees here include that writer's once it has committed.
CREATE FUNCTION lists_referenced_by_leads() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    IF EXISTS (SELECT 1 FROM leads WHERE list_id = OLD.id) THEN
        RAISE EXCEPTION 'delete of list % refused: leads still belong to it', OLD.id
            USING ERRCODE = 'foreign_key_violation', TABLE = 'lists';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER lists_referenced_by_leads BEFORE DELETE ON lists
    FOR EACH ROW EXECUTE FUNCTION lists_referenced_by_leads();
