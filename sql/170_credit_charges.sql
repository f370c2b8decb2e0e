-- The credit ledger as a record of its own. It was a view over lead_facts (004), and facts go with their lead: a
-- purge, the retention of leads, an erasure or an import's undo deleted the charges too, which refunded the
-- month's LEADS_MONTHLY_CREDITS and rewrote past months' spending in `leads credits`. Money spent stays spent:
-- every costed fact now writes one charge, by a trigger in the fact's own transaction (whatever path writes it:
-- the contact stages' INSERT, company enrichment's COPY), and a charge outlives its fact and lead.
--
-- A charge holds no value and nothing of the person: credits, source, field (and the people-search stage that
-- bought a `person_match`), the job, the list it was spent on, the time of the lookup. While the lead exists it
-- also names the lead and the fact that carries the cost (a job's per-lead caps, company enrichment's rewrite of
-- its own facts); deleting the lead clears both (the foreign key, then charges_forget_fact). An erasure does not
-- touch the charges (the privacy registry keeps them): it deletes the person's leads last, which clears them so.
-- The one charge ever removed is one whose fact its own job rewrites in the same transaction
-- (enrichment.replace_company_facts: the cost is written again on exactly one fact).
CREATE TABLE credit_charges (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    charged_at  timestamptz NOT NULL,
    credits     numeric(12, 4) NOT NULL CHECK (credits > 0),
    source      text NOT NULL,
    field       text NOT NULL,
    stage       text,
    job_id      text,
    list_id     bigint,
    lead_id     bigint REFERENCES leads (id) ON DELETE SET NULL,
    fact_id     bigint
);
CREATE INDEX credit_charges_month ON credit_charges (charged_at);
CREATE INDEX credit_charges_job ON credit_charges (job_id, lead_id) WHERE job_id IS NOT NULL;
CREATE INDEX credit_charges_lead ON credit_charges (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX credit_charges_fact ON credit_charges (fact_id) WHERE fact_id IS NOT NULL;

-- Dated by the fact, as the ledger was: a cached answer's fact is dated by its lookup, the charge with it.
CREATE FUNCTION credit_charge_of_fact() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    INSERT INTO credit_charges (charged_at, credits, source, field, stage, job_id, list_id, lead_id, fact_id)
        SELECT NEW.observed_at, NEW.cost, NEW.source, NEW.field, NEW.details ->> 'stage', NEW.batch_id, l.list_id,
               NEW.lead_id, NEW.id
        FROM leads l WHERE l.id = NEW.lead_id;
    RETURN NULL;
END $$;
-- Costless facts (an import's, a merge's, a CRM pull's) do not call the function.
CREATE TRIGGER lead_facts_charge AFTER INSERT ON lead_facts FOR EACH ROW WHEN (NEW.cost > 0)
    EXECUTE FUNCTION credit_charge_of_fact();

-- A merge moves the merged leads' facts to the survivor (and its undo moves them back): their charges follow, so a
-- job's per-lead cap counts them on the lead that holds them, as it did reading the facts. The list stays the one
-- the credits were spent on.
CREATE FUNCTION credit_charge_follows_fact() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    UPDATE credit_charges SET lead_id = NEW.lead_id WHERE fact_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER lead_facts_charge_moved AFTER UPDATE OF lead_id ON lead_facts FOR EACH ROW
    WHEN (NEW.cost > 0 AND OLD.lead_id IS DISTINCT FROM NEW.lead_id)
    EXECUTE FUNCTION credit_charge_follows_fact();

-- A lead deleted sets lead_id NULL (the foreign key); the fact went with it, so its id goes too.
CREATE FUNCTION credit_charge_forgets_fact() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    NEW.fact_id := NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER charges_forget_fact BEFORE UPDATE OF lead_id ON credit_charges FOR EACH ROW
    WHEN (NEW.lead_id IS NULL) EXECUTE FUNCTION credit_charge_forgets_fact();

-- The charges of the facts that exist (those of leads already deleted are lost: nothing recorded them).
INSERT INTO credit_charges (charged_at, credits, source, field, stage, job_id, list_id, lead_id, fact_id)
    SELECT f.observed_at, f.cost, f.source, f.field, f.details ->> 'stage', f.batch_id, l.list_id, f.lead_id, f.id
    FROM lead_facts f JOIN leads l ON l.id = f.lead_id
    WHERE f.cost > 0
    ORDER BY f.id;

-- Nothing sums the facts' costs any more: their index of spending by time goes.
DROP INDEX lead_facts_spent;

-- The view keeps its name and what readers used of it (job, lead, source, credits, time, field), over the charges;
-- the facts' details (cited pages, provider payloads) are no longer in it.
DROP VIEW credit_ledger;
CREATE VIEW credit_ledger WITH (security_invoker = true) AS
    SELECT job_id, lead_id, list_id, source, credits, charged_at AS at, field FROM credit_charges;

-- Row-level security by the list the credits were spent on (as batches, 007): a charge of a lead since deleted
-- stays with its list's members. `leads credits` narrows it the same way for the live lists one can read.
ALTER TABLE credit_charges ENABLE ROW LEVEL SECURITY;
CREATE POLICY member_reads ON credit_charges FOR SELECT
    USING (list_id IS NOT NULL AND may_read_list(list_id, current_user));
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'leads_reader') THEN
        GRANT SELECT ON credit_charges, credit_ledger TO leads_reader;
    END IF;
END $$;
