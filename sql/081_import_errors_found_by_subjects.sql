-- A privacy request searches import errors by the blind indexes of her identifiers (subjects), by the rows of
-- hers holding a shared number (import and row), and the rows written in clear before sql/010 by their text
-- (lib/privacy/registry.py): without an index on subjects, each request read the whole table. With these and
-- import_errors_import, each arm of that condition is an index scan (the rows in clear are few and stay few).
CREATE INDEX import_errors_subjects ON import_errors USING gin (subjects);
CREATE INDEX import_errors_in_clear ON import_errors (import_id) WHERE value NOT LIKE 'enc:%';
