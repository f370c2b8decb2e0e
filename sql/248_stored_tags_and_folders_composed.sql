-- Tags and folders are composed (NFC) as they are written since tags typed with a composed "ü" and with u and a
-- combining diaeresis made two tags that print alike; those stored before are composed here, so that a search by
-- the tag typed either way finds every lead that has it. A lead holding both forms keeps one tag; a list's tags keep
-- their order, each once. (Tags with control characters, refused since, are left as they are: only their owner can
-- say what they meant.)
INSERT INTO lead_tags (lead_id, tag)
    SELECT lead_id, normalize(tag, NFC) FROM lead_tags WHERE tag <> normalize(tag, NFC)
    ON CONFLICT DO NOTHING;
DELETE FROM lead_tags WHERE tag <> normalize(tag, NFC);

CREATE OR REPLACE FUNCTION pg_temp.composed_tags(tags text[]) RETURNS text[] LANGUAGE sql IMMUTABLE AS
$$ SELECT coalesce(array_agg(t ORDER BY first), '{}') FROM (
       SELECT normalize(u.tag, NFC) AS t, min(u.n) AS first FROM unnest(tags) WITH ORDINALITY u(tag, n) GROUP BY 1
   ) c $$;
UPDATE lists SET tags = pg_temp.composed_tags(tags) WHERE tags <> pg_temp.composed_tags(tags);
UPDATE lists SET folder = normalize(folder, NFC) WHERE folder <> normalize(folder, NFC);
UPDATE merges SET survivor_tags = pg_temp.composed_tags(survivor_tags)
    WHERE survivor_tags <> pg_temp.composed_tags(survivor_tags);
