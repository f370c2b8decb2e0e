-- A fact's charge is written with it, by its INSERT (170): an UPDATE of the fact's cost would leave the ledger
-- charging the old price. No code changes a cost (a rewrite deletes the fact and writes it again), so it is refused.
CREATE FUNCTION lead_fact_cost_is_fixed() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    RAISE EXCEPTION 'the cost of a lead fact is fixed: its charge in credit_charges was written with it (fact %)',
        OLD.id USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER lead_facts_cost_fixed BEFORE UPDATE OF cost ON lead_facts FOR EACH ROW
    WHEN (OLD.cost IS DISTINCT FROM NEW.cost) EXECUTE FUNCTION lead_fact_cost_is_fixed();
