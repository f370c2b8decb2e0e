-- Import errors are sealed when written (sql/010) and those written in clear before were sealed by sql/093: the
-- privacy registry no longer searches import errors by their text, and the partial index on the rows in clear
-- (sql/081) served only that search.
DROP INDEX import_errors_in_clear;
