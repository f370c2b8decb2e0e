-- PII encryption at rest (lib/privacy/crypto.py): emails, phone numbers and street addresses are stored sealed
-- (AES-GCM, "enc:<key id>:<base64>"), with a keyed blind index (HMAC-SHA256) beside each for equality lookups.
-- The email domain stays in clear for analytics and search. Values written before this migration are sealed by
-- `leads keys rotate` (it seals plaintext and re-seals values under old keys), which also fills the blind indexes.

ALTER TABLE leads
    ADD COLUMN email_bidx        text,
    ADD COLUMN email_domain      text,
    ADD COLUMN phone_bidx        text,
    ADD COLUMN mobile_phone_bidx text,
    ADD COLUMN street_bidx       text;
UPDATE leads SET email_domain = lower(split_part(email, '@', 2))
    WHERE email IS NOT NULL AND email NOT LIKE 'enc:%' AND email LIKE '%@%';

-- Every writer seals and indexes together. NOT VALID: rows written before this migration are sealed by
-- `leads keys rotate`; every new or updated row is checked.
ALTER TABLE leads ADD CONSTRAINT leads_email_sealed
    CHECK (email IS NULL OR (email LIKE 'enc:%' AND email_bidx IS NOT NULL)) NOT VALID;
ALTER TABLE leads ADD CONSTRAINT leads_phone_sealed
    CHECK (phone IS NULL OR (phone LIKE 'enc:%' AND phone_bidx IS NOT NULL)) NOT VALID;
ALTER TABLE leads ADD CONSTRAINT leads_mobile_phone_sealed
    CHECK (mobile_phone IS NULL OR (mobile_phone LIKE 'enc:%' AND mobile_phone_bidx IS NOT NULL)) NOT VALID;
ALTER TABLE leads ADD CONSTRAINT leads_street_sealed
    CHECK (street IS NULL OR street LIKE 'enc:%') NOT VALID;

-- Identity lookups (import dedupe, duplicate detection, CRM matching) probe the blind index.
DROP INDEX IF EXISTS leads_list_email;
DROP INDEX IF EXISTS leads_list_phone;
CREATE INDEX leads_list_email_bidx ON leads (list_id, email_bidx) WHERE email_bidx IS NOT NULL;
CREATE INDEX leads_list_phone_bidx ON leads (list_id, phone_bidx) WHERE phone_bidx IS NOT NULL;

-- Substring search sees the email's domain, not its (sealed) local part; a whole address is found through the
-- blind index instead (lib/store/search.py). The one definition of the search text (sql/009) changes here, and
-- the search rows already stored follow it.
CREATE OR REPLACE FUNCTION lead_search_text(l leads) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT lead_search_text(l.first_name, l.last_name, l.email_domain, l.company, l.title) $$;
UPDATE lead_search x SET search_text = lead_search_text(l) FROM leads l WHERE l.id = x.lead_id;

-- Facts of sealed fields hold sealed values.
ALTER TABLE lead_facts ADD CONSTRAINT lead_facts_value_sealed
    CHECK (value IS NULL OR field NOT IN ('email', 'phone', 'mobile_phone', 'street') OR value LIKE 'enc:%')
    NOT VALID;

-- Rejected and corrected cells are sealed; subjects are the blind indexes of the identifiers found in them, for
-- privacy requests.
ALTER TABLE import_errors ADD COLUMN subjects text[] DEFAULT '{}';  -- cleared (NULL) with the value on erasure

-- The verification cache is keyed by the address's blind index (its payload is sealed); rows cached before are
-- re-keyed by `leads keys rotate`.
ALTER TABLE email_verifications RENAME COLUMN email TO email_bidx;
-- Pattern evidence counts one row per known address: the address's blind index, not its local part (rows from
-- before are re-keyed by `leads keys rotate`).
ALTER TABLE email_pattern_evidence RENAME COLUMN local_part TO address_bidx;

-- Do-Not-Call numbers are compared by blind index too (rows from before: `leads keys rotate`).
ALTER TABLE dnc_numbers RENAME COLUMN number TO number_bidx;

-- Key rotations: one row per `leads keys rotate`, its progress (the last lead id re-sealed per table) so an
-- interrupted rotation resumes where it stopped.
CREATE TABLE key_rotations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_key  text NOT NULL,
    progress    jsonb NOT NULL DEFAULT '{}',
    resealed    bigint NOT NULL DEFAULT 0,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
    started_by  text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
ALTER TABLE key_rotations ENABLE ROW LEVEL SECURITY;
