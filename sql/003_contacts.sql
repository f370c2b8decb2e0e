-- Contact discovery and verification: what is known per mail domain and per address, so that a batch never
-- asks a mail host or a paid provider a question whose answer is already stored and still fresh.

-- One row per mail domain: its MX hosts (or the A-record fallback) and whether its hosts accept any address.
CREATE TABLE mail_domains (
    domain          text PRIMARY KEY,
    mx_hosts        text[] NOT NULL DEFAULT '{}',
    fallback_a      boolean NOT NULL DEFAULT false,
    mx_error        text,
    mx_checked_at   timestamptz,
    mx_expires_at   timestamptz,
    catch_all       boolean,
    catch_all_at    timestamptz
);

-- The last verdict per address and verification method (smtp, zerobounce, neverbounce, mx): the cache a later
-- batch reuses instead of paying again. cost is what that verdict cost when it was bought.
CREATE TABLE email_verifications (
    email       text NOT NULL,
    method      text NOT NULL,
    status      text NOT NULL CHECK (status IN ('valid', 'invalid', 'catch_all', 'unknown', 'disposable', 'role')),
    confidence  smallint NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    cost        numeric(12, 4) NOT NULL DEFAULT 0,
    details     jsonb NOT NULL DEFAULT '{}',
    checked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email, method)
);

-- Evidence for each domain's address pattern: one row per known address (a verified email of a lead, or one a
-- provider reported), so re-running a batch adds nothing twice. Shares are counts grouped by pattern.
CREATE TABLE email_pattern_evidence (
    domain      text NOT NULL,
    local_part  text NOT NULL,
    pattern     text NOT NULL,
    source      text NOT NULL,
    observed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain, local_part)
);
CREATE INDEX email_pattern_evidence_pattern ON email_pattern_evidence (pattern);

-- Reusing a batch's own facts after a crash ("do not pay twice") looks them up by batch, field and source.
CREATE INDEX lead_facts_batch_field ON lead_facts (batch_id, field, source, lead_id) WHERE batch_id IS NOT NULL;

-- Do-Not-Call registry copies: each loaded file (a full list, or a change list of additions or deletions) with
-- the snapshot date it represents, and the numbers currently on the list (E.164) with the snapshot they came from.
CREATE TABLE dnc_lists (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('full', 'additions', 'deletions')),
    format        text NOT NULL CHECK (format IN ('ftc', 'plain')),
    snapshot_date date NOT NULL,
    file_path     text NOT NULL,
    file_sha256   text NOT NULL,
    numbers       integer NOT NULL,
    rejected      integer NOT NULL,
    loaded_by     text NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dnc_numbers (
    number        text PRIMARY KEY,
    list_id       bigint NOT NULL REFERENCES dnc_lists (id),
    snapshot_date date NOT NULL
);
