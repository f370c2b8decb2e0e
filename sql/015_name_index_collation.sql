-- The name index of the search rows (sql/012) compares its keys bytewise (COLLATE "C"), like the email and phone
-- key indexes of leads (sql/014): name keys are only ever compared for equality, so nothing but the cost of each
-- comparison changes. The bulk build of a 1M-row import's name index: 1.65 s -> 0.90 s of CPU (one process), in
-- the part of the import where the index builds and the checks share both cores. The lookup by name
-- (lib/store/imports.py) compares with the same collation, or the index would not serve it.
CREATE OR REPLACE FUNCTION lead_search_build_partition(p_import bigint) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (search_text public.gin_trgm_ops)',
                   'lead_search_i' || p_import || '_trgm', 'lead_search_i' || p_import);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (last_name, lead_id) INCLUDE (list_id, import_id, search_text)',
                   'lead_search_i' || p_import || '_sort', 'lead_search_i' || p_import);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (list_id, name_key COLLATE "C") INCLUDE (lead_id)'
                   ' WHERE name_key IS NOT NULL',
                   'lead_search_i' || p_import || '_name', 'lead_search_i' || p_import);
END $$;

DROP INDEX lead_search_no_import_name;
CREATE INDEX lead_search_no_import_name ON lead_search_no_import (list_id, name_key COLLATE "C") INCLUDE (lead_id)
    WHERE name_key IS NOT NULL;
-- The partitions of finished imports get their name index again; one of an import that stopped half-way gets it
-- from the build that ends its re-run.
DO $$
DECLARE
    import_row record;
BEGIN
    FOR import_row IN SELECT id FROM imports WHERE status IN ('completed', 'undone') ORDER BY id LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I', 'lead_search_i' || import_row.id || '_name');
        PERFORM lead_search_build_partition(import_row.id);
    END LOOP;
END $$;
