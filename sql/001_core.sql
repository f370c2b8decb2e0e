-- Lists, leads, imports and their errors, batches, lead facts: the system of record.
-- Everything lives in the "leads" schema; Dagster's own storage uses "public" on the same server.

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE lists (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (btrim(name) <> ''),
    description text,
    folder      text,
    tags        text[] NOT NULL DEFAULT '{}',
    dedupe      text NOT NULL DEFAULT 'email' CHECK (dedupe IN ('email', 'phone', 'both')),
    settings    jsonb NOT NULL DEFAULT '{}',
    owner       text NOT NULL,
    archived_at timestamptz,
    deleted_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX lists_name_key ON lists (lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE imports (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id       text NOT NULL UNIQUE,
    list_id        bigint NOT NULL REFERENCES lists (id),
    file_path      text NOT NULL,
    file_sha256    text NOT NULL,
    file_size      bigint NOT NULL,
    status         text NOT NULL DEFAULT 'processing'
                   CHECK (status IN ('processing', 'completed', 'failed', 'undone')),
    mapping        json NOT NULL DEFAULT '{}',  -- json, not jsonb: keeps the file's column order
    options        jsonb NOT NULL DEFAULT '{}',
    dialect        jsonb NOT NULL DEFAULT '{}',
    chunk_rows     integer NOT NULL,
    chunks_done    integer NOT NULL DEFAULT 0,
    total_rows     integer,
    processed_rows integer NOT NULL DEFAULT 0,
    imported       integer NOT NULL DEFAULT 0,
    updated        integer NOT NULL DEFAULT 0,
    skipped        integer NOT NULL DEFAULT 0,
    errors         integer NOT NULL DEFAULT 0,
    warnings       integer NOT NULL DEFAULT 0,
    failure        text,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    undone_at      timestamptz
);
CREATE INDEX imports_list_file ON imports (list_id, file_sha256);

-- One row per problem found in an imported file. severity 'error' rejected the row; 'warning' kept the row
-- and moved the offending value to the lead's custom fields.
CREATE TABLE import_errors (
    import_id   bigint NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    chunk       integer NOT NULL,
    row_number  integer NOT NULL,
    column_name text,
    value       text,
    reason      text NOT NULL,
    severity    text NOT NULL DEFAULT 'error' CHECK (severity IN ('error', 'warning'))
);
CREATE INDEX import_errors_import ON import_errors (import_id, row_number);

CREATE TABLE leads (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    list_id           bigint NOT NULL REFERENCES lists (id),
    first_name        text,
    last_name         text,
    full_name         text,
    email             text,
    phone             text,
    phone_ext         text,
    mobile_phone      text,
    mobile_phone_ext  text,
    title             text,
    seniority         text,
    department        text,
    company           text,
    company_domain    text,
    website           text,
    linkedin_url      text,
    industry          text,
    employee_count    integer,
    annual_revenue    numeric,
    street            text,
    city              text,
    state             text,
    postal_code       text,
    country           text CHECK (country ~ '^[A-Z]{2}$'),
    source            text,
    notes             text,
    custom            jsonb NOT NULL DEFAULT '{}',
    company_key       text,
    name_key          text,
    stage             text NOT NULL DEFAULT 'new',
    -- The import that created the lead. No foreign key: imports are never deleted, and the per-row check would
    -- cost ~7 s of a 1M-row import (measured); undo and batch_members join on it through its index.
    created_by_import bigint,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
-- Identity lookups used by import dedupe, duplicate detection and CRM matching.
CREATE INDEX leads_list_email ON leads (list_id, email) WHERE email IS NOT NULL;
CREATE INDEX leads_list_phone ON leads (list_id, phone) WHERE phone IS NOT NULL;
CREATE INDEX leads_list_linkedin ON leads (list_id, linkedin_url) WHERE linkedin_url IS NOT NULL;
CREATE INDEX leads_list_name_key ON leads (list_id, name_key) WHERE name_key IS NOT NULL;
CREATE INDEX leads_created_by_import ON leads (created_by_import) WHERE created_by_import IS NOT NULL;

-- The previous values of leads an import updated, so that undo restores them exactly.
CREATE TABLE import_updates (
    import_id bigint NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    lead_id   bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    previous  jsonb NOT NULL,
    PRIMARY KEY (import_id, lead_id)
);

-- A batch is the unit of work and the key of the Dagster partition "batches": an imported file or a selection.
CREATE TABLE batches (
    id          text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('import', 'selection')),
    list_id     bigint REFERENCES lists (id),
    description text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The leads a batch touched without creating them (an import's duplicates, a selection's leads). The leads an
-- import created are found through leads.created_by_import instead: a million-row import then writes no
-- million membership rows. Read a batch's leads from the batch_members view.
CREATE TABLE batch_leads (
    batch_id text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    lead_id  bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    PRIMARY KEY (batch_id, lead_id)
);
CREATE INDEX batch_leads_lead ON batch_leads (lead_id);

CREATE VIEW batch_members AS
    SELECT batch_id, lead_id FROM batch_leads
    UNION ALL
    SELECT i.batch_id, l.id FROM leads l JOIN imports i ON i.id = l.created_by_import;

-- Every value a source produced: where a lead's field came from, how sure it is, and what it cost.
CREATE TABLE lead_facts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id     bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    field       text NOT NULL,
    value       text,
    source      text NOT NULL,
    confidence  smallint NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    observed_at timestamptz NOT NULL DEFAULT now(),
    cost        numeric(12, 4) NOT NULL DEFAULT 0,
    batch_id    text REFERENCES batches (id) ON DELETE SET NULL,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX lead_facts_lead_field ON lead_facts (lead_id, field, observed_at DESC);
