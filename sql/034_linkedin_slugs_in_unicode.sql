-- LinkedIn URLs keep their slug in Unicode (lib/normalize.py, linkedin_urls): a slug an earlier import stored
-- percent-encoded, as LinkedIn's own export writes it ("/in/j%c3%bcrgen"), is decoded, so that the same profile
-- imported again, written either way, finds its lead. A slug that does not decode to UTF-8, or decodes to a space
-- or a URL delimiter, stays as it is, as the import keeps it.
CREATE FUNCTION pg_temp.linkedin_slug_decoded(url text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    prefix text := substring(url FROM '^https://www\.linkedin\.com/(?:in|company)/');
    decoded text;
BEGIN
    SELECT convert_from(
               string_agg(CASE WHEN m[1] IS NOT NULL THEN decode(substr(m[1], 2), 'hex') ELSE convert_to(m[2], 'UTF8') END,
                          ''::bytea ORDER BY n),
               'UTF8')
      INTO decoded
      FROM regexp_matches(substr(url, length(prefix) + 1), '(%[0-9a-fA-F]{2})|([^%]+|%)', 'g') WITH ORDINALITY AS r(m, n);
    IF decoded ~ '[[:space:]/?#%]' THEN
        RETURN url;
    END IF;
    RETURN prefix || lower(normalize(decoded, NFC));
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
    RETURN url;
END $$;

UPDATE leads SET linkedin_url = pg_temp.linkedin_slug_decoded(linkedin_url)
 WHERE linkedin_url ~ '^https://www\.linkedin\.com/(in|company)/[^/]*%[0-9a-fA-F]{2}';
