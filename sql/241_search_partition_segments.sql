-- An import's search partition is split into segments (sub-partitions by the new column lead_search.segment, a
-- run of the import's chunks each: lib/store/search_index.py), so that a segment's trigram, sort and name indexes
-- are built in bulk on a side connection as soon as the import has moved on to the next segment, on the core the
-- merges leave idle, rather than all of them after the last chunk. The import's end builds only what is left (the
-- last segment's) and the partition's own indexes, which attach the segments' instead of building anew.
-- A partition made before this migration stays one plain table, built whole at its end as before.
ALTER TABLE lead_search ADD COLUMN segment integer NOT NULL DEFAULT 0;

-- The segment a new search row goes to is the one the merging transaction opened (lead_search_open_segment);
-- any other writer's rows (and a search row rewritten later, by the other triggers) go to segment 0, which every
-- segmented partition has.
CREATE OR REPLACE FUNCTION lead_search_inserted() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    INSERT INTO lead_search (lead_id, list_id, import_id, last_name, search_text, name_key, segment)
        SELECT n.id, n.list_id, i.id, n.last_name, lead_search_text(n), n.name_key,
               coalesce(nullif(current_setting('leads.search_segment', true), '')::integer, 0)
        FROM new_leads n LEFT JOIN imports i ON i.id = n.created_by_import AND i.list_id = n.list_id;
    RETURN NULL;
END $$;

-- One segment of the import's partition (idempotent; none for a partition made before this migration, which
-- takes rows of any segment).
CREATE FUNCTION lead_search_create_segment(p_import bigint, p_segment integer) RETURNS void LANGUAGE plpgsql AS
$$ DECLARE
    partition text := 'lead_search_i' || p_import;
    segment text := partition || '_s' || p_segment;
BEGIN
    IF to_regclass(quote_ident(segment)) IS NULL
       AND (SELECT relkind FROM pg_class WHERE oid = to_regclass(quote_ident(partition))) = 'p' THEN
        EXECUTE format('CREATE TABLE %I (LIKE lead_search INCLUDING DEFAULTS)', segment);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', segment);  -- readers go through the parent
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%s)', partition, segment, p_segment);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION lead_search_create_partition(p_import bigint) RETURNS void LANGUAGE plpgsql AS
$$ DECLARE
    partition text := 'lead_search_i' || p_import;
BEGIN
    IF to_regclass(quote_ident(partition)) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE lead_search INCLUDING DEFAULTS) PARTITION BY LIST (segment)', partition);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', partition);
        EXECUTE format('ALTER TABLE lead_search ATTACH PARTITION %I FOR VALUES IN (%s)', partition, p_import);
    END IF;
    PERFORM lead_search_create_segment(p_import, 0);
END $$;

-- Called by the merging transaction before it inserts a chunk's leads: their search rows go to this segment.
CREATE FUNCTION lead_search_open_segment(p_import bigint, p_segment integer) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN
    PERFORM lead_search_create_segment(p_import, p_segment);
    PERFORM set_config('leads.search_segment', p_segment::text, true);
END $$;

-- One of the search indexes (sql/106) on a table: the partition, its segment, or a partition made before the
-- segments. The name is the table's and the index's.
CREATE FUNCTION lead_search_build_index(p_table text, p_index text) RETURNS void LANGUAGE plpgsql AS
$$ DECLARE
    index_name text := p_table || '_' || p_index;
BEGIN
    CASE p_index  -- any other name raises case_not_found
    WHEN 'trgm' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING gin (search_text public.gin_trgm_ops)',
                       index_name, p_table);
    WHEN 'sort' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (last_name, lead_id) INCLUDE (list_id, import_id, search_text)',
                       index_name, p_table);
    WHEN 'name' THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (list_id, name_key COLLATE "C") INCLUDE (lead_id)'
                       ' WHERE name_key IS NOT NULL', index_name, p_table);
    END CASE;
END $$;

-- A segment's index (nothing if the segment does not exist: a partition made before the segments).
CREATE FUNCTION lead_search_build_segment(p_import bigint, p_segment integer, p_index text) RETURNS void
LANGUAGE plpgsql AS
$$ DECLARE
    segment text := 'lead_search_i' || p_import || '_s' || p_segment;
BEGIN
    IF to_regclass(quote_ident(segment)) IS NOT NULL THEN
        PERFORM lead_search_build_index(segment, p_index);
    END IF;
END $$;

-- The partition's index: each segment's first (those built while the import ran are kept), then the partition's,
-- which attaches them and builds nothing.
CREATE OR REPLACE FUNCTION lead_search_build_partition(p_import bigint, p_index text) RETURNS void LANGUAGE plpgsql AS
$$ DECLARE
    partition text := 'lead_search_i' || p_import;
    segment record;
BEGIN
    FOR segment IN SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
                   WHERE h.inhparent = to_regclass(quote_ident(partition)) ORDER BY c.relname LOOP
        PERFORM lead_search_build_index(segment.relname, p_index);
    END LOOP;
    PERFORM lead_search_build_index(partition, p_index);
END $$;
