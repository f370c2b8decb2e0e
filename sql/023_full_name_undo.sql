-- An undo restores a lead's saved row exactly: the full-name trigger (sql/021) stands aside while an undo
-- writes (the import and merge undos set leads.restoring for their transaction); otherwise restoring the old
-- first and last name could make it rewrite the full name the saved row holds.
DROP TRIGGER leads_full_name_follows ON leads;
CREATE TRIGGER leads_full_name_follows BEFORE UPDATE OF first_name, last_name ON leads FOR EACH ROW
    WHEN ((OLD.first_name IS DISTINCT FROM NEW.first_name OR OLD.last_name IS DISTINCT FROM NEW.last_name)
          AND OLD.full_name IS NOT DISTINCT FROM NEW.full_name
          AND OLD.full_name IS NOT DISTINCT FROM nullif(concat_ws(' ', OLD.first_name, OLD.last_name), '')
          AND current_setting('leads.restoring', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION leads_full_name_follows();
