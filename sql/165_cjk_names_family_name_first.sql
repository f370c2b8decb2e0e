-- A Chinese, Japanese or Korean name is written family name first and without a space: 王伟, 山田花子, 김민준.
-- Joined as a Western name, a lead imported with its names in two columns had the full name "伟 王" (`leads
-- show`, exports, a CRM's name field), which reads as another name, and a search for 王伟, as everyone writes
-- it, found nobody. lead_names_family_first says which names are such (both in Han, kana or Hangul only: the
-- class FAMILY_NAME_FIRST of lib/fields.py), lead_full_name joins first and last name as the import does
-- (lib/normalize.py), the full name follows it (sql/021; one that followed the plain join before follows too)
-- and the search text holds it.
CREATE FUNCTION lead_names_family_first(first_name text, last_name text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT coalesce((first_name || last_name) ~ '^[\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\U00020000-\U0002fa1f]+$',
                   false) $$;

CREATE FUNCTION lead_full_name(first_name text, last_name text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN lead_names_family_first(first_name, last_name) THEN last_name || first_name
               ELSE nullif(concat_ws(' ', first_name, last_name), '') END $$;

CREATE OR REPLACE FUNCTION leads_full_name_follows() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    NEW.full_name := lead_full_name(NEW.first_name, NEW.last_name);
    RETURN NEW;
END $$;
DROP TRIGGER leads_full_name_follows ON leads;
CREATE TRIGGER leads_full_name_follows BEFORE UPDATE OF first_name, last_name ON leads FOR EACH ROW
    WHEN ((OLD.first_name IS DISTINCT FROM NEW.first_name OR OLD.last_name IS DISTINCT FROM NEW.last_name)
          AND OLD.full_name IS NOT DISTINCT FROM NEW.full_name
          AND (OLD.full_name IS NOT DISTINCT FROM lead_full_name(OLD.first_name, OLD.last_name)
               OR OLD.full_name IS NOT DISTINCT FROM nullif(concat_ws(' ', OLD.first_name, OLD.last_name), ''))
          AND current_setting('leads.restoring', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION leads_full_name_follows();

-- The full names joined Western order before (it was the import's join) are turned; updated_at and write_xact stay
-- (a name's order is no change an import's undo or a CRM push should see).
UPDATE leads SET full_name = lead_full_name(first_name, last_name)
WHERE lead_names_family_first(first_name, last_name) AND full_name = first_name || ' ' || last_name;

-- Other names keep their search text to the character (first and last name apart, as sql/022 wrote it): only the
-- search rows of family-first names are rewritten.
CREATE OR REPLACE FUNCTION lead_search_text(first_name text, last_name text, email text, company text, title text)
    RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT search_fold(CASE WHEN lead_names_family_first(first_name, last_name) THEN last_name || first_name
                           ELSE coalesce(first_name, '') || ' ' || coalesce(last_name, '') END
                      || ' ' || coalesce(email, '') || ' ' || coalesce(company, '') || ' ' || coalesce(title, '')) $$;

UPDATE lead_search x SET search_text = lead_search_text(l)
FROM leads l WHERE l.id = x.lead_id AND lead_names_family_first(l.first_name, l.last_name)
    AND x.search_text IS DISTINCT FROM lead_search_text(l);
