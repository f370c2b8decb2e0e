-- A privacy request searches import errors by the blind indexes of her identifiers (subjects) and by the rows of
-- hers holding a shared number (import and row) (lib/privacy/registry.py): without an index on subjects, each
-- request read the whole table. With it and import_errors_import, each arm of that condition is an index scan.
CREATE INDEX import_errors_subjects ON import_errors USING gin (subjects);
