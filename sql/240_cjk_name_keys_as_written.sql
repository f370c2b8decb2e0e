-- A Chinese, Japanese or Korean name's dedupe key is its full name as written (lib/normalize.py, name_key:
-- "山田花子|トヨタ自動車"), where it joined first and last name as a Western one ("花子 山田|トヨタ自動車"): a lead of
-- 山田 and 花子 in two columns was not found by a row of 山田花子 (a Japanese name, which a full-name column keeps
-- whole), nor one of 王伟 written whole in a last-name column by a row of 王 and 伟, and the same person at the same
-- company became two leads. The leads whose first and last name are both in Han, kana or Hangul
-- (lead_names_family_first, sql/165) are listed here; their name keys are recomputed by the import's rule in Python
-- in this migration's transaction (store/migrations.py, bulk.rekey_family_first_names), their search rows follow.
CREATE TEMP TABLE family_first_rekey ON COMMIT DROP AS
    SELECT id FROM leads WHERE name_key IS NOT NULL AND lead_names_family_first(first_name, last_name);
