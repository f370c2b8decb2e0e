-- The credit ledger (170) kept money spent through deleted leads, but nothing kept it from a plain UPDATE or
-- DELETE: `DELETE FROM credit_charges` refunded the month's LEADS_MONTHLY_CREDITS, an UPDATE of credits rewrote
-- past spending. Like the audit log (007) it is append-only now, for every role, the owner included, except for
-- the three writers it has:
--   a lead deleted clears the charge's lead and fact ids (the foreign key, then charges_forget_fact; the trigger
--     below is named to run after it), and only once the lead is gone;
--   a merge and its undo move a charge to the lead that now holds its fact (credit_charge_follows_fact);
--   company enrichment's rewrite of its own facts deletes their charges in the same transaction
--     (enrichment.replace_company_facts, under the transaction-local setting leads.rewriting_company_facts), and
--     only charges whose fact still exists: the one it deletes and writes again.
-- Every other column of a charge never changes.
CREATE FUNCTION credit_charges_are_append_only() RETURNS trigger LANGUAGE plpgsql AS
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
    END IF;
    RAISE EXCEPTION 'credit charges are append-only: % of credit_charges is refused (spent credits stay spent; '
        'a charge changes only when its lead is deleted or merged, or its company enrichment job rewrites its fact)',
        TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER charges_stay_spent BEFORE UPDATE OR DELETE ON credit_charges
    FOR EACH ROW EXECUTE FUNCTION credit_charges_are_append_only();
CREATE TRIGGER charges_stay_spent_whole BEFORE TRUNCATE ON credit_charges
    FOR EACH STATEMENT EXECUTE FUNCTION credit_charges_are_append_only();

