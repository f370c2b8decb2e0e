-- Which transaction last wrote each lead, so that an import's undo knows exactly whether a lead it wrote changed
-- since. It compared leads.updated_at with the import's last write (sql/016), but updated_at is the writer's
-- transaction start (now()): a bulk edit, enrichment or CRM pull that began before the import's last chunk and
-- committed after it looked older than the import, and the undo overwrote its change. A transaction id does not
-- depend on when a writer began or committed: a lead is unchanged since the import exactly when the transaction
-- that last wrote it is one of the import's chunks (imports.write_xacts).
-- A new lead takes its inserting transaction from the column default (no trigger on the import's insert path);
-- an update that writes updated_at (every writer does, scoring's score and stage aside) takes its own from the
-- trigger; an undo restoring a saved row (leads.restoring, sql/023) restores the saved one with it. Leads written
-- before this migration have none, and are compared by updated_at as before.
ALTER TABLE leads ADD COLUMN write_xact xid8;
ALTER TABLE leads ALTER COLUMN write_xact SET DEFAULT pg_current_xact_id();
ALTER TABLE imports ADD COLUMN write_xacts xid8[];
CREATE FUNCTION leads_write_xact() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    NEW.write_xact := pg_current_xact_id();
    RETURN NEW;
END $$;
-- (updated_at = now(): a writer whose transaction began in the same microsecond as the last one's)
CREATE TRIGGER leads_write_xact BEFORE UPDATE ON leads FOR EACH ROW
    WHEN ((NEW.updated_at IS DISTINCT FROM OLD.updated_at OR NEW.updated_at = now())
          AND current_setting('leads.restoring', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION leads_write_xact();
