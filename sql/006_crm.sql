-- CRM sync: connections' state, links between leads and CRM records, sync runs, rejected rows, conflicts, log.
-- A connection itself is a YAML file (crm/<name>.yaml); the database keeps only what syncing it produced.

CREATE TABLE crm_connections (
    name         text PRIMARY KEY,
    crm          text NOT NULL CHECK (crm IN ('salesforce', 'hubspot', 'pipedrive', 'gohighlevel')),
    pull_cursor  text,                 -- the CRM's last-modified time of the newest record pulled (ISO 8601)
    quota_day    date,                 -- the day quota_used counts requests for (the CRM's daily quota)
    quota_used   integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per lead and connection once the lead exists in the CRM. last_hash is the hash of the mapped values
-- last pushed or pulled: a lead is pushed again only when its mapped values hash differently. last_values are
-- those values: the common base that tells which side changed a field (three-way merge on pull).
CREATE TABLE crm_links (
    lead_id        bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    connection     text NOT NULL REFERENCES crm_connections (name) ON DELETE CASCADE,
    remote_id      text NOT NULL,
    remote_updated timestamptz,
    last_hash      text,
    last_values    jsonb NOT NULL DEFAULT '{}',
    synced_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lead_id, connection)
);
CREATE UNIQUE INDEX crm_links_remote ON crm_links (connection, remote_id);

CREATE TABLE crm_sync_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection    text NOT NULL REFERENCES crm_connections (name) ON DELETE CASCADE,
    direction     text NOT NULL CHECK (direction IN ('push', 'pull', 'bidirectional')),
    list_id       bigint REFERENCES lists (id),
    status        text NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'completed', 'partial', 'failed', 'stopped')),
    leads_to_sync integer NOT NULL DEFAULT 0,
    created       integer NOT NULL DEFAULT 0,
    updated       integer NOT NULL DEFAULT 0,
    unchanged     integer NOT NULL DEFAULT 0,
    failed        integer NOT NULL DEFAULT 0,
    invalid       integer NOT NULL DEFAULT 0,
    pulled        integer NOT NULL DEFAULT 0,
    conflicts     integer NOT NULL DEFAULT 0,
    requests      integer NOT NULL DEFAULT 0,
    message       text,
    started_by    text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX crm_sync_runs_connection ON crm_sync_runs (connection, started_at DESC);

-- Rows the CRM (or validation) refused. A transient row is retried on every later sync until it succeeds
-- (then resolved_at is set); a permanent row is retried only once the lead's mapped values change (the hash).
CREATE TABLE crm_rejects (
    lead_id      bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    connection   text NOT NULL REFERENCES crm_connections (name) ON DELETE CASCADE,
    sync_id      bigint NOT NULL REFERENCES crm_sync_runs (id) ON DELETE CASCADE,
    category     text NOT NULL,        -- transient, invalid_email, required_field, duplicate, validation, ...
    permanent    boolean NOT NULL,
    message      text NOT NULL,
    values_hash  text,
    attempts     integer NOT NULL DEFAULT 1,
    first_at     timestamptz NOT NULL DEFAULT now(),
    last_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    PRIMARY KEY (lead_id, connection)
);
CREATE INDEX crm_rejects_open ON crm_rejects (connection) WHERE resolved_at IS NULL;

-- Every record-level outcome of a run that was not "unchanged": what happened to which lead, and why.
CREATE TABLE crm_sync_log (
    sync_id    bigint NOT NULL REFERENCES crm_sync_runs (id) ON DELETE CASCADE,
    lead_id    bigint,
    remote_id  text,
    action     text NOT NULL,          -- created, updated, failed, invalid, pulled_created, pulled_updated
    category   text,
    message    text,
    attempts   integer NOT NULL DEFAULT 1,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crm_sync_log_run ON crm_sync_log (sync_id, action);

-- Fields both sides changed since the last sync, with both values and the rule's decision.
CREATE TABLE crm_conflicts (
    sync_id      bigint NOT NULL REFERENCES crm_sync_runs (id) ON DELETE CASCADE,
    lead_id      bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    field        text NOT NULL,
    local_value  text,
    remote_value text,
    rule         text NOT NULL,
    winner       text NOT NULL CHECK (winner IN ('crm', 'local')),
    at           timestamptz NOT NULL DEFAULT now()
);
