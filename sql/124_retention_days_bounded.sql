-- `leads retention set` took any number of days before the 1-to-36500 bound (100 years, lib/store/retention.py
-- MAX_DAYS): a policy stored then with more (99999999, "keep for good") made every `leads retention apply` fail,
-- now() minus that many days being before the year 1 (timestamp out of range), for every kind and list. Such a
-- policy keeps what it keeps at 36500 days as well (nothing stored is a hundred years old); the bound is now also
-- the table's, so no writer stores such a policy again.
UPDATE retention_policies SET days = 36500 WHERE days > 36500;
ALTER TABLE retention_policies DROP CONSTRAINT retention_policies_days_check,
    ADD CONSTRAINT retention_policies_days_check CHECK (days BETWEEN 1 AND 36500);
