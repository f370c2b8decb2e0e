-- A push updating a record sends the fields changed since the last sync and records the record's modification
-- time after it, and the next pull skipped a record no newer than that as the push's own echo: a salesperson's
-- edit of a field the push left out, made after the pull and before the push, was skipped until the record
-- changed again in the CRM. The link keeps the CRM field names the last push left out (empty after a create, a
-- send of every field, or a pull): a pull reading a record no newer than the push compares those with the last
-- agreed values and takes a difference under the field's rule.
ALTER TABLE crm_links
    ADD COLUMN left_out text[] NOT NULL DEFAULT '{}';
