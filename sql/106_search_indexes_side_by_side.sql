-- An import's search partition gets its trigram, sort and name indexes (sql/009, 012, 015) side by side, one
-- connection each, while the import's checks run (lib/importer.py): built one after another in one call, the sort
-- and name indexes (~2.5 s of CPU for 1M leads) waited for the trigram index, at the end of the import, when little
-- else was left to share the cores with. The function builds the one index it is given.
CREATE FUNCTION lead_search_build_partition(p_import bigint, p_index text) RETURNS void LANGUAGE plpgsql AS
$$ DECLARE
    partition text := 'lead_search_i' || p_import;
    index_name text := partition || '_' || p_index;
BEGIN
    CASE p_index  -- any other name raises case_not_found
    WHEN 'trgm' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (search_text public.gin_trgm_ops)',
                       index_name, partition);
    WHEN 'sort' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (last_name, lead_id) INCLUDE (list_id, import_id, search_text)',
                       index_name, partition);
    WHEN 'name' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (list_id, name_key COLLATE "C") INCLUDE (lead_id)'
                       ' WHERE name_key IS NOT NULL', index_name, partition);
    END CASE;
END $$;

-- The one-argument form stays, building the three: an import still running the code from before this migration
-- (a Dagster run or `leads import` not restarted when a newer command migrated the database) calls it at its end.
CREATE OR REPLACE FUNCTION lead_search_build_partition(p_import bigint) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN
    PERFORM lead_search_build_partition(p_import, which) FROM unnest(ARRAY['trgm', 'sort', 'name']) AS which;
END $$;
