-- A selection's description (a batch's, and "selection" in an audit entry) held the values it was filtered by in
-- clear: `leads score --where "last_name = Garcia"` kept her name after her erasure, in the append-only audit log
-- too. Selection.describe leaves out the values compared with a person's details (filters.PERSONAL and custom
-- fields) and the text searched for; this does the same to the descriptions stored before. The audit log's
-- append-only trigger is off for this one statement, run by the schema's owner as a migration.
CREATE FUNCTION pg_temp.without_personal_values(description text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(
        regexp_replace(
            description,
            '(^|; |, where |: )(first_name|last_name|full_name|email|phone|mobile_phone|linkedin_url|street|notes'
            '|custom\.("[^"]*"|[^[:space:]=!<>~;]+))[[:space:]]*(not in|in|!=|<=|>=|!~|=|<|>|~)[[:space:]]*[^;]*',
            '\1\2 \4 <value>',
            'g'
        ),
        '(^|; )text (''([^''\\]|\\.)*''|"([^"\\]|\\.)*")',
        '\1text <value>',
        'g'
    )
$$;

UPDATE batches SET description = pg_temp.without_personal_values(description)
WHERE kind = 'selection' AND description IS DISTINCT FROM pg_temp.without_personal_values(description);

ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;
UPDATE audit_log
SET details = jsonb_set(details, '{selection}', to_jsonb(pg_temp.without_personal_values(details ->> 'selection')))
WHERE jsonb_typeof(details -> 'selection') = 'string'
  AND details ->> 'selection' <> pg_temp.without_personal_values(details ->> 'selection');
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;
