-- A charge names the fact that carries its cost while the fact exists (170). A deleted lead's charges lose both
-- ids (the foreign key, then charges_forget_fact), but a fact deleted while its lead stays was not followed: an
-- erasure deletes the facts of other leads that name the person (a verdict on her address bought for a
-- colleague's lead), and their charges went on naming a fact id that no longer existed. The spend stays on the
-- lead it was bought for, as a deleted lead's stays on its list; the fact id is cleared with the fact.
--
-- Only costed facts have charges (170's trigger), so only their deletion looks; a fact whose lead is being deleted
-- is left to the foreign key, which clears both ids (one write of the charge, not two).
CREATE FUNCTION credit_charge_loses_fact() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    IF EXISTS (SELECT 1 FROM leads l WHERE l.id = OLD.lead_id) THEN
        UPDATE credit_charges SET fact_id = NULL WHERE fact_id = OLD.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER lead_facts_charge_unlinked AFTER DELETE ON lead_facts FOR EACH ROW WHEN (OLD.cost > 0)
    EXECUTE FUNCTION credit_charge_loses_fact();

-- The append-only rule of the ledger (205), with the one change above allowed: the fact id cleared, nothing else,
-- once the fact is gone.
CREATE OR REPLACE FUNCTION credit_charges_are_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('leads.rewriting_company_facts', true) = 'on'
           AND EXISTS (SELECT 1 FROM lead_facts f WHERE f.id = OLD.fact_id) THEN
            RETURN OLD;
        END IF;
    ELSIF TG_OP = 'UPDATE' AND to_jsonb(NEW) - 'lead_id' - 'fact_id' = to_jsonb(OLD) - 'lead_id' - 'fact_id' THEN
        IF NEW.lead_id IS NOT DISTINCT FROM OLD.lead_id AND NEW.fact_id IS NOT DISTINCT FROM OLD.fact_id THEN
            RETURN NEW;
        END IF;
        IF NEW.lead_id IS NULL AND (NEW.fact_id IS NULL OR NEW.fact_id = OLD.fact_id)
           AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.id = OLD.lead_id) THEN
            RETURN NEW;
        END IF;
        IF NEW.lead_id IS NOT NULL AND NEW.fact_id = OLD.fact_id
           AND EXISTS (SELECT 1 FROM lead_facts f WHERE f.id = NEW.fact_id AND f.lead_id = NEW.lead_id) THEN
            RETURN NEW;
        END IF;
        IF NEW.lead_id IS NOT DISTINCT FROM OLD.lead_id AND NEW.fact_id IS NULL
           AND NOT EXISTS (SELECT 1 FROM lead_facts f WHERE f.id = OLD.fact_id) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'credit charges are append-only: % of credit_charges is refused (spent credits stay spent; '
        'a charge changes only when its lead is deleted or merged, its fact is deleted, or its company enrichment '
        'job rewrites its fact)',
        TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

-- The charges of the facts already deleted so (by erasures before this migration).
UPDATE credit_charges c SET fact_id = NULL
    WHERE c.fact_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM lead_facts f WHERE f.id = c.fact_id);
