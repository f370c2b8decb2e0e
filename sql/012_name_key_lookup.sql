-- The lookup by name and company (name_key), an import's last way to find a duplicate of a row with no email,
-- phone or LinkedIn URL, moves from an index on leads to the search rows (lead_search, sql/009), where an
-- import's partition gets its index in bulk after its last chunk like its trigram and sort indexes. Every lead
-- has a name key, so the index on leads took a random insert per imported lead: a 1M-row import ran 53.3 / 57.1 s
-- without it against 63.9 / 64.3 s with it (alternating runs). lib/store/imports.py reads the indexed partitions
-- by index and those still being filled (an import in progress or stopped half-way) by one hash join each.

ALTER TABLE lead_search ADD COLUMN name_key text;
-- Filling the column rewrites every search row; the trigram and sort indexes are dropped first and built again
-- after, in bulk, rather than taking an entry per rewritten row.
DO $$
DECLARE
    import_row record;
BEGIN
    FOR import_row IN SELECT id FROM imports ORDER BY id LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I, %I',
                       'lead_search_i' || import_row.id || '_trgm', 'lead_search_i' || import_row.id || '_sort');
    END LOOP;
END $$;
DROP INDEX lead_search_no_import_trgm, lead_search_no_import_sort;
UPDATE lead_search x SET name_key = l.name_key FROM leads l WHERE l.id = x.lead_id AND l.name_key IS NOT NULL;
CREATE INDEX lead_search_no_import_trgm ON lead_search_no_import USING gin (search_text public.gin_trgm_ops);
CREATE INDEX lead_search_no_import_sort ON lead_search_no_import (last_name, lead_id)
    INCLUDE (list_id, import_id, search_text);

CREATE OR REPLACE FUNCTION lead_search_inserted() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    INSERT INTO lead_search (lead_id, list_id, import_id, last_name, search_text, name_key)
        SELECT n.id, n.list_id, i.id, n.last_name, lead_search_text(n), n.name_key
        FROM new_leads n LEFT JOIN imports i ON i.id = n.created_by_import AND i.list_id = n.list_id;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION lead_search_updated() RETURNS trigger LANGUAGE plpgsql AS
$$ DECLARE
    old_partition bigint := lead_search_partition(OLD.created_by_import, OLD.list_id);
BEGIN
    IF old_partition IS NULL THEN
        DELETE FROM lead_search WHERE import_id IS NULL AND lead_id = OLD.id;
    ELSE
        DELETE FROM lead_search WHERE import_id = old_partition AND lead_id = OLD.id;
    END IF;
    INSERT INTO lead_search (lead_id, list_id, import_id, last_name, search_text, name_key)
        VALUES (NEW.id, NEW.list_id, lead_search_partition(NEW.created_by_import, NEW.list_id), NEW.last_name,
                lead_search_text(NEW), NEW.name_key);
    RETURN NULL;
END $$;
DROP TRIGGER lead_search_updated ON leads;
CREATE TRIGGER lead_search_updated AFTER UPDATE ON leads FOR EACH ROW
    WHEN (lead_search_text(OLD) IS DISTINCT FROM lead_search_text(NEW)
          OR OLD.list_id IS DISTINCT FROM NEW.list_id
          OR OLD.last_name IS DISTINCT FROM NEW.last_name
          OR OLD.name_key IS DISTINCT FROM NEW.name_key
          OR OLD.created_by_import IS DISTINCT FROM NEW.created_by_import)
    EXECUTE FUNCTION lead_search_updated();

CREATE OR REPLACE FUNCTION lead_search_build_partition(p_import bigint) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (search_text public.gin_trgm_ops)',
                   'lead_search_i' || p_import || '_trgm', 'lead_search_i' || p_import);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (last_name, lead_id) INCLUDE (list_id, import_id, search_text)',
                   'lead_search_i' || p_import || '_sort', 'lead_search_i' || p_import);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (list_id, name_key) INCLUDE (lead_id) WHERE name_key IS NOT NULL',
                   'lead_search_i' || p_import || '_name', 'lead_search_i' || p_import);
END $$;

CREATE INDEX lead_search_no_import_name ON lead_search_no_import (list_id, name_key) INCLUDE (lead_id)
    WHERE name_key IS NOT NULL;
-- The partitions of finished imports get their indexes again, and the name index; one of an import that stopped
-- half-way gets them from the build that ends its re-run.
DO $$
DECLARE
    import_row record;
BEGIN
    FOR import_row IN SELECT id FROM imports WHERE status IN ('completed', 'undone') ORDER BY id LOOP
        PERFORM lead_search_build_partition(import_row.id);
    END LOOP;
END $$;

DROP INDEX leads_list_name_key;
