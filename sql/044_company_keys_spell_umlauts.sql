-- Company keys spell German umlauts as German writes them without (lib/normalize.py, company_key): "Müller GmbH"
-- and "Mueller GmbH" are one company, "mueller" (the key was "muller", and a row of "Jan Berg, Mueller GmbH" did not
-- find the lead of "Jan Berg, Müller GmbH" by name). The leads whose company has an umlaut are listed here; their
-- company and name keys are recomputed by the import's own rule in Python in this migration's transaction
-- (store/migrations.py, bulk.respell_company_keys: SQL has no copy of the rule), and the company profiles cached
-- under an old "name:" key are copied to the new one.
CREATE TEMP TABLE company_key_refresh ON COMMIT DROP AS
    SELECT id FROM leads WHERE normalize(company, NFC) ~ '[äöüÄÖÜ]';
