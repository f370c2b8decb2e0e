-- A lead's full name follows its first and last name when a writer changes those alone (`leads bulk set
-- last_name`, a CRM pull, enrichment): before, `leads show` kept the old full name beside the new last name while
-- search (which reads first and last) showed the new one. Only a full name that was the plain join of the old
-- names is derived and rewritten; one written by hand ("Dr. Ann Lee") or by the same statement is left alone.
CREATE FUNCTION leads_full_name_follows() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    NEW.full_name := nullif(concat_ws(' ', NEW.first_name, NEW.last_name), '');
    RETURN NEW;
END $$;
CREATE TRIGGER leads_full_name_follows BEFORE UPDATE OF first_name, last_name ON leads FOR EACH ROW
    WHEN ((OLD.first_name IS DISTINCT FROM NEW.first_name OR OLD.last_name IS DISTINCT FROM NEW.last_name)
          AND OLD.full_name IS NOT DISTINCT FROM NEW.full_name
          AND OLD.full_name IS NOT DISTINCT FROM nullif(concat_ws(' ', OLD.first_name, OLD.last_name), ''))
    EXECUTE FUNCTION leads_full_name_follows();
