-- Enrichment: jobs (one per batch), company profiles cached by domain, per-list enrichment settings, webhook
-- deliveries, and the credit ledger read from lead_facts (credits used by a job = SUM(cost) of its batch's facts).

-- An enrichment job is a batch (its id is the batch key) with what to enrich, how, and at what price.
CREATE TABLE enrichment_jobs (
    id                text PRIMARY KEY REFERENCES batches (id) ON DELETE CASCADE,
    sources           text[] NOT NULL CHECK (cardinality(sources) > 0),
    template          text NOT NULL,
    overwrite         boolean NOT NULL DEFAULT false,
    priority          text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high')),
    max_credits       numeric(12, 4) CHECK (max_credits >= 0),
    estimated_credits numeric(12, 4) NOT NULL DEFAULT 0,
    estimated_seconds numeric(12, 1) NOT NULL DEFAULT 0,
    estimate          jsonb NOT NULL DEFAULT '{}',
    leads_queued      integer NOT NULL DEFAULT 0,
    notify_url        text,
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'processing', 'completed', 'partial', 'failed')),
    failure           text,
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    completed_at      timestamptz
);
CREATE INDEX enrichment_jobs_created ON enrichment_jobs (created_at DESC);

-- How far each source of a job got (leads processed of total), for progress and ETA while it runs.
CREATE TABLE enrichment_progress (
    job_id     text NOT NULL REFERENCES enrichment_jobs (id) ON DELETE CASCADE,
    source     text NOT NULL,
    processed  integer NOT NULL DEFAULT 0,
    total      integer NOT NULL DEFAULT 0,
    status     text NOT NULL DEFAULT 'queued'
               CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'skipped')),
    note       text,
    started_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, source)
);

-- Leads a source could not process (after retries), with the reason: the job's "failed" count.
CREATE TABLE enrichment_failures (
    job_id  text NOT NULL REFERENCES enrichment_jobs (id) ON DELETE CASCADE,
    lead_id bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    source  text NOT NULL,
    reason  text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, lead_id, source)
);

-- One research result per company and provider, shared by every lead of the company until it expires. The
-- lookup key is the company's domain, or "name:<company key>" when no domain is known. status 'found' carries a
-- profile; 'not_found' means the provider knew nothing (no charge); 'rejected' means the answer did not parse
-- or validate (recorded, never applied). credits were charged to job_id, once.
CREATE TABLE company_profiles (
    lookup_key  text NOT NULL CHECK (lookup_key <> ''),
    provider    text NOT NULL,
    domain      text,
    status      text NOT NULL CHECK (status IN ('found', 'not_found', 'rejected')),
    name        text,
    name_key    text,
    profile     jsonb NOT NULL DEFAULT '{}',
    sources     jsonb NOT NULL DEFAULT '[]',
    credits     numeric(12, 4) NOT NULL DEFAULT 0,
    details     jsonb NOT NULL DEFAULT '{}',
    job_id      text REFERENCES batches (id) ON DELETE SET NULL,
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (lookup_key, provider)
);
CREATE INDEX company_profiles_name_key ON company_profiles (name_key) WHERE name_key IS NOT NULL;

-- Enrichment settings of a list (the lists' own table belongs to the lists area): enrichAfterImport and defaults.
CREATE TABLE list_enrichment_settings (
    list_id             bigint PRIMARY KEY REFERENCES lists (id) ON DELETE CASCADE,
    enrich_after_import boolean NOT NULL DEFAULT false,
    sources             text[] NOT NULL DEFAULT '{company}',
    template            text NOT NULL DEFAULT 'standard',
    priority            text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high')),
    max_credits         numeric(12, 4) CHECK (max_credits >= 0),
    notify_url          text,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Every completion notification attempt: where (token-free URL), what, and how it went.
CREATE TABLE webhook_deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       text NOT NULL REFERENCES enrichment_jobs (id) ON DELETE CASCADE,
    run_id       text NOT NULL,
    url          text NOT NULL,
    payload      jsonb NOT NULL,
    status_code  integer,
    error        text,
    delivered    boolean NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (job_id) WHERE delivered;

CREATE INDEX lead_facts_batch ON lead_facts (batch_id, lead_id) WHERE batch_id IS NOT NULL;
CREATE INDEX lead_facts_spent ON lead_facts (observed_at) WHERE cost > 0;

-- The credit ledger: every charged provider call as (job, lead, source, credits, time). Facts are its only
-- record, so the ledger and a job's creditsUsed can never disagree.
CREATE VIEW credit_ledger AS
    SELECT batch_id AS job_id, lead_id, source, cost AS credits, observed_at AS at, field, details
    FROM lead_facts
    WHERE cost > 0;
