-- LinkedIn URLs lower-cased as an import lower-cases them (lib/normalize.py, linkedin_urls: Python's str.lower,
-- full Unicode case mapping). sql/034 lower-cased the slugs it decoded with the database's lower(), which follows
-- the database's locale: ASCII-only under the C locale ("/in/Über" stayed so, and the same profile imported again,
-- "/in/über", did not find its lead), and a letter at a time under others (a final "Σ" became "σ", Python writes
-- "ς"). PostgreSQL's builtin PG_UNICODE_FAST collation maps case as Python does, whatever the locale.
UPDATE leads SET linkedin_url = lower(linkedin_url COLLATE pg_unicode_fast)
 WHERE linkedin_url ~ '^https://www\.linkedin\.com/(in|company)/'
   AND linkedin_url <> lower(linkedin_url COLLATE pg_unicode_fast);
