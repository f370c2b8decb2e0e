-- A deleted lead's rows go with it in one statement a table instead of a query a row. Each foreign key to
-- leads(id) ran a query per deleted lead (its cascade, or the credit ledger's SET NULL), fourteen of them for
-- every lead: `leads imports undo` of a 1M-row import spent ~50 of its ~65 CPU-s in them (EXPLAIN ANALYZE of the
-- DELETE of 200k leads: 0.6-0.8 s a key, ~10 of 12 s). As sql/013 did for a lead's list, triggers keep what the
-- keys guaranteed:
--   - a row written naming a lead that does not exist is refused (foreign_key_violation, naming the table, the
--     column and the lead), and the leads a writing transaction's rows name stay locked (FOR KEY SHARE) until it
--     ends, so a lead cannot be deleted under rows being written for it;
--   - a deleted lead's rows go with it, one set-based statement a table at the end of the DELETE: the credit
--     ledger's charges lose the lead (their spend stays, as ON DELETE SET NULL had it), the rows of the other
--     thirteen tables are deleted.
-- The functions run as their owner, as a key's checks and actions do: row security never hides a lead or a row.

-- A row written or moved to a lead (a merge moves facts, tags and charges to its survivor): the lead it names,
-- held (key share) until the transaction ends, or an error naming it. Row by row, as the key checked: a check per
-- statement over its rows (a transition table) cost ~0.15 ms a statement, and CRM syncs and contact stages write
-- a row a statement (5,000 single-row inserts: 0.76-1.0 s, against 0.13-0.17 s with the key and 0.11-0.16 s row
-- by row); on bulk inserts it saved a third (200k rows in 4 statements: 1.0-1.2 s, 1.5-2.0 s, 1.6-1.9 s).
CREATE FUNCTION lead_reference_checked() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = leads, pg_temp AS
$$ DECLARE
    named bigint;
BEGIN
    IF TG_ARGV[0] = 'survivor_id' THEN
        named := NEW.survivor_id;
    ELSE
        named := NEW.lead_id;
    END IF;
    PERFORM 1 FROM leads WHERE id = named FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% % names lead %, which does not exist',
            CASE TG_OP WHEN 'INSERT' THEN 'insert into' ELSE 'update of' END, TG_TABLE_NAME, named
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME, COLUMN = TG_ARGV[0];
    END IF;
    RETURN NULL;
END $$;

-- The columns that name a lead, and what a deleted lead does to their rows: ``delete`` them, or ``clear`` the
-- column (the credit ledger: spent credits stay spent). A later table that names a lead is added by
-- ``reference_leads``, which makes its triggers too.
CREATE TABLE lead_references (
    table_name  text PRIMARY KEY,
    column_name text NOT NULL,
    on_delete   text NOT NULL CHECK (on_delete IN ('delete', 'clear'))
);

-- The check reads its column by name (NEW.lead_id, NEW.survivor_id): a dynamic read of NEW would be planned for
-- every row. A table naming a lead in another column adds its branch to lead_reference_checked.
CREATE FUNCTION reference_leads(tab text, col text, on_delete text) RETURNS void LANGUAGE plpgsql AS
$$ DECLARE
    key record;
BEGIN
    IF col NOT IN ('lead_id', 'survivor_id') THEN
        RAISE EXCEPTION 'reference_leads: lead_reference_checked reads lead_id or survivor_id, not %.%', tab, col;
    END IF;
    FOR key IN SELECT c.conname FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
        WHERE c.contype = 'f' AND c.confrelid = 'leads'::regclass AND c.conrelid = tab::regclass AND a.attname = col
    LOOP
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', tab, key.conname);
    END LOOP;
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I FOR EACH ROW WHEN (NEW.%I IS NOT NULL)'
                   ' EXECUTE FUNCTION lead_reference_checked(%3$L)', tab || '_lead_exists', tab, col);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE OF %I ON %I FOR EACH ROW'
                   ' WHEN (NEW.%2$I IS NOT NULL AND NEW.%2$I IS DISTINCT FROM OLD.%2$I)'
                   ' EXECUTE FUNCTION lead_reference_checked(%2$L)', tab || '_lead_moved', col, tab);
    INSERT INTO lead_references VALUES (tab, col, on_delete);
END $$;

-- The ledger's charges are cleared first, while their facts still exist: charges_forget_fact clears the fact id
-- in the same write, as the key's SET NULL had it.
CREATE FUNCTION lead_references_deleted() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = leads, pg_temp AS
$$ DECLARE
    ref record;
BEGIN
    FOR ref IN SELECT * FROM lead_references ORDER BY on_delete = 'delete', table_name LOOP
        IF ref.on_delete = 'clear' THEN
            EXECUTE format('UPDATE %I x SET %I = NULL FROM old_leads o WHERE x.%2$I = o.id', ref.table_name,
                           ref.column_name);
        ELSE
            EXECUTE format('DELETE FROM %I x USING old_leads o WHERE x.%I = o.id', ref.table_name, ref.column_name);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

SELECT reference_leads(tab, col, on_delete) FROM (VALUES
    ('import_updates', 'lead_id', 'delete'), ('batch_leads', 'lead_id', 'delete'),
    ('lead_facts', 'lead_id', 'delete'), ('lead_tags', 'lead_id', 'delete'), ('merges', 'survivor_id', 'delete'),
    ('enrichment_failures', 'lead_id', 'delete'), ('lead_scores', 'lead_id', 'delete'),
    ('score_history', 'lead_id', 'delete'), ('stage_changes', 'lead_id', 'delete'), ('crm_links', 'lead_id', 'delete'),
    ('crm_rejects', 'lead_id', 'delete'), ('crm_conflicts', 'lead_id', 'delete'),
    ('crm_creates_sent', 'lead_id', 'delete'), ('credit_charges', 'lead_id', 'clear')) AS r(tab, col, on_delete);

CREATE TRIGGER lead_references_deleted AFTER DELETE ON leads REFERENCING OLD TABLE AS old_leads
    FOR EACH STATEMENT EXECUTE FUNCTION lead_references_deleted();
