-- Substring search moves off the leads table into lead_search: one narrow row per lead (its search text and
-- sort key), partitioned by the import that created the lead. An import fills its own fresh partition without a
-- trigram index and builds that index in bulk when its last chunk is in (lib/store/search_index.py): a GIN
-- CREATE INDEX over 1M rows costs a fraction of the row-by-row trigram maintenance the leads_search_trgm index
-- cost every import (1M rows: ~25 s in the merging backend plus ~17 s of pending-list flushes beside it).
-- Leads made any other way (bulk copy, CRM), and leads moved out of the list their import filled, live in the
-- partition for no import, whose index is kept up as usual: so the partitions a search of some lists reads are
-- those of the imports into these lists plus that one (lib/store/search.py prunes the others).
-- Triggers on leads keep lead_search in step with every writer, so no code path can forget it.

-- The one definition of what search looks through for a lead (change this line to change it everywhere).
CREATE FUNCTION lead_search_text(l leads) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT lead_search_text(l.first_name, l.last_name, l.email, l.company, l.title) $$;

CREATE TABLE lead_search (
    lead_id     bigint NOT NULL,
    list_id     bigint NOT NULL,
    import_id   bigint,           -- the partition: leads.created_by_import while the lead is in that import's list
    last_name   text,             -- sort key: `leads search --sort last_name` walks its index
    search_text text NOT NULL
) PARTITION BY LIST (import_id);
-- Only the lead_id index is on the parent (each partition gets it when created: the triggers below find rows by
-- it, and appending ascending ids to a btree is cheap); the trigram and sort indexes are built per partition.
CREATE INDEX lead_search_lead ON lead_search (lead_id);

CREATE TABLE lead_search_no_import PARTITION OF lead_search FOR VALUES IN (NULL);
CREATE INDEX lead_search_no_import_trgm ON lead_search_no_import USING gin (search_text public.gin_trgm_ops);
-- The sort index covers what a search walking it reads, so that walk is an index-only scan (once vacuumed).
CREATE INDEX lead_search_no_import_sort ON lead_search_no_import (last_name, lead_id)
    INCLUDE (list_id, import_id, search_text);

-- The partition of one import (created by start_import before its first chunk, so a lead with a
-- created_by_import always has one) and its bulk-built indexes (after its last chunk; a re-run builds them if a
-- killed import did not). The name is derived from the id only. The partition is made apart and attached
-- (SHARE UPDATE EXCLUSIVE on lead_search) rather than created as a partition (ACCESS EXCLUSIVE), so a starting
-- import neither waits for another import's chunk nor stalls the searches behind it.
CREATE FUNCTION lead_search_create_partition(p_import bigint) RETURNS void LANGUAGE plpgsql AS
$$ DECLARE
    partition text := 'lead_search_i' || p_import;
BEGIN
    IF to_regclass(quote_ident(partition)) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE lead_search INCLUDING DEFAULTS)', partition);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', partition);  -- readers go through the parent
        EXECUTE format('ALTER TABLE lead_search ATTACH PARTITION %I FOR VALUES IN (%s)', partition, p_import);
    END IF;
END $$;
CREATE FUNCTION lead_search_build_partition(p_import bigint) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (search_text public.gin_trgm_ops)',
                   'lead_search_i' || p_import || '_trgm', 'lead_search_i' || p_import);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (last_name, lead_id) INCLUDE (list_id, import_id, search_text)',
                   'lead_search_i' || p_import || '_sort', 'lead_search_i' || p_import);
END $$;

-- New leads: one set-based insert per statement (an import chunk is one statement).
-- The partition a lead's search row belongs in.
CREATE FUNCTION lead_search_partition(p_import bigint, p_list bigint) RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT i.id FROM imports i WHERE i.id = p_import AND i.list_id = p_list $$;

CREATE FUNCTION lead_search_inserted() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    INSERT INTO lead_search (lead_id, list_id, import_id, last_name, search_text)
        SELECT n.id, n.list_id, i.id, n.last_name, lead_search_text(n)
        FROM new_leads n LEFT JOIN imports i ON i.id = n.created_by_import AND i.list_id = n.list_id;
    RETURN NULL;
END $$;
CREATE TRIGGER lead_search_inserted AFTER INSERT ON leads REFERENCING NEW TABLE AS new_leads
    FOR EACH STATEMENT EXECUTE FUNCTION lead_search_inserted();

-- Changed leads: per row, and only when what lead_search holds changes (scoring or stage updates do not pay).
CREATE FUNCTION lead_search_updated() RETURNS trigger LANGUAGE plpgsql AS
$$ DECLARE
    old_partition bigint := lead_search_partition(OLD.created_by_import, OLD.list_id);
BEGIN
    IF old_partition IS NULL THEN
        DELETE FROM lead_search WHERE import_id IS NULL AND lead_id = OLD.id;
    ELSE
        DELETE FROM lead_search WHERE import_id = old_partition AND lead_id = OLD.id;
    END IF;
    INSERT INTO lead_search (lead_id, list_id, import_id, last_name, search_text)
        VALUES (NEW.id, NEW.list_id, lead_search_partition(NEW.created_by_import, NEW.list_id), NEW.last_name,
                lead_search_text(NEW));
    RETURN NULL;
END $$;
CREATE TRIGGER lead_search_updated AFTER UPDATE ON leads FOR EACH ROW
    WHEN (lead_search_text(OLD) IS DISTINCT FROM lead_search_text(NEW)
          OR OLD.list_id IS DISTINCT FROM NEW.list_id
          OR OLD.last_name IS DISTINCT FROM NEW.last_name
          OR OLD.created_by_import IS DISTINCT FROM NEW.created_by_import)
    EXECUTE FUNCTION lead_search_updated();

CREATE FUNCTION lead_search_deleted() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    DELETE FROM lead_search x USING old_leads o WHERE x.lead_id = o.id;
    RETURN NULL;
END $$;
CREATE TRIGGER lead_search_deleted AFTER DELETE ON leads REFERENCING OLD TABLE AS old_leads
    FOR EACH STATEMENT EXECUTE FUNCTION lead_search_deleted();

-- The leads already stored: a partition per import, filled, then indexed in bulk.
DO $$
DECLARE
    import_row record;
BEGIN
    FOR import_row IN SELECT id FROM imports ORDER BY id LOOP
        PERFORM lead_search_create_partition(import_row.id);
    END LOOP;
    INSERT INTO lead_search (lead_id, list_id, import_id, last_name, search_text)
        SELECT l.id, l.list_id, i.id, l.last_name, lead_search_text(l)
        FROM leads l LEFT JOIN imports i ON i.id = l.created_by_import AND i.list_id = l.list_id;
    FOR import_row IN SELECT id FROM imports ORDER BY id LOOP
        PERFORM lead_search_build_partition(import_row.id);
    END LOOP;
END $$;

DROP INDEX leads_search_trgm;

-- Plain-SQL readers (sql/007) see the search rows of the lists they may read, like the leads themselves, through
-- the parent; a partition has row-level security and no policy or grant, so it cannot be read around that.
ALTER TABLE lead_search ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_search_no_import ENABLE ROW LEVEL SECURITY;
CREATE POLICY member_reads ON lead_search FOR SELECT USING (may_read_list(list_id, current_user));
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'leads_reader') THEN
        GRANT SELECT ON lead_search TO leads_reader;
    END IF;
END $$;
