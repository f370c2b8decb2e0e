-- imports.mapping keeps an import's column names. Before csvfile's header check, a file without a header row (or
-- with rows wider than its header row) had its first data row read as the header: a person's name, address and
-- number became column names, which privacy export and erasure did not reach (they do since the registry's
-- "imports" entry). A mapping with a column named like an email address or a phone number (with its country
-- code or at least 10 digits: the rule of mapping.contact_kind, which the header check applies) is such a row and
-- is emptied: it only describes the import, and the header check refuses that file now.
UPDATE imports SET mapping = '{}'
WHERE EXISTS (
    SELECT 1
    FROM json_object_keys(mapping) k(name),
         LATERAL (SELECT btrim(ltrim(btrim(k.name), '''')) AS v) c,
         LATERAL (SELECT length(regexp_replace(c.v, '[^0-9]', '', 'g')) AS n) d
    WHERE c.v ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'
       OR (c.v ~ '^\+?[0-9(][0-9 ().\-/]*[0-9]$' AND c.v !~ '^[0-9]+$' AND d.n BETWEEN 7 AND 15
           AND (c.v LIKE '+%' OR d.n >= 10))
);
