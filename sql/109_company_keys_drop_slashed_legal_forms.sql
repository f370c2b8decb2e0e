-- Company keys drop the legal forms written with a slash, as the others (lib/normalize.py, company_key): "Ørsted A/S"
-- and "Ørsted" are one company, "orsted" (the key was "orsted a s", and a row of "Jan Berg, Ørsted" did not find the
-- lead of "Jan Berg, Ørsted A/S" by name), as are "Natura S/A" and "Natura". The leads whose company has a slash
-- are listed here; their company and name keys are recomputed by the import's own rule in Python in this
-- migration's transaction (store/migrations.py, bulk.respell_slashed_company_keys: SQL has no copy of the rule),
-- and the company profiles cached under an old "name:" key are copied to the new one.
CREATE TEMP TABLE company_key_refresh ON COMMIT DROP AS
    SELECT id FROM leads WHERE company ~ '[/／]';
