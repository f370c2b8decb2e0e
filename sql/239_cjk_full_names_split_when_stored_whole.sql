-- A Chinese or Korean full name in one column written without a space (王伟, 李娜, 빈민준) is split family name first
-- on import (lib/normalize.py, complete_names): first name 伟, last name 王. The leads imported before it was, from a
-- file with a full-name column and no first or last name column, keep it whole in the last name with no first
-- name: none to greet or to send a CRM, and a name key ("李娜|腾讯科技") that no row of the same person has any more
-- ("娜 李|腾讯科技"): a row without an email or phone found no lead by name and company and made a second one. Those
-- leads are listed here; their names are split by the import's own rule in Python in this migration's transaction
-- (store/migrations.py, bulk.split_family_first_names: SQL has no copy of the rule), their name keys and search
-- rows follow. A name written whole in a last-name column (a file's, a CRM's, `leads bulk set`'s) is its writer's
-- choice and stays, as an import keeps it.
CREATE TEMP TABLE family_first_split ON COMMIT DROP AS
    SELECT l.id FROM leads l JOIN imports i ON i.id = l.created_by_import
    WHERE l.first_name IS NULL AND l.last_name = l.full_name
        AND l.last_name ~ '^[\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\U00020000-\U0002fa1f]{2,4}$'
        AND EXISTS (SELECT FROM json_each_text(i.mapping) m WHERE m.value = 'full_name')
        AND NOT EXISTS (SELECT FROM json_each_text(i.mapping) m WHERE m.value IN ('first_name', 'last_name'));
