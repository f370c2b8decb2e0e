-- Lead list management: members with roles, lead tags, a nullable score, search, duplicate merges.

-- Who may do what on a list. The list's creator is its first owner; `leads lists share` adds editors and viewers.
-- Every access check reads this table through leads_pipeline/lib/store/access.py (row-level security comes later).
CREATE TABLE list_members (
    list_id    bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    username   text NOT NULL CHECK (btrim(username) <> ''),
    role       text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    granted_by text NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, username)
);
CREATE INDEX list_members_user ON list_members (username);
INSERT INTO list_members (list_id, username, role, granted_by)
    SELECT id, owner, 'owner', owner FROM lists ON CONFLICT DO NOTHING;

-- Tags on leads live in their own table: an import writes no tag rows and pays for no array index.
CREATE TABLE lead_tags (
    lead_id bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    tag     text NOT NULL CHECK (btrim(tag) <> ''),
    PRIMARY KEY (lead_id, tag)
);
CREATE INDEX lead_tags_tag ON lead_tags (tag, lead_id);

-- The lead score (0-100) written by the scoring stage; NULL until a lead is scored.
ALTER TABLE leads ADD COLUMN score smallint CHECK (score BETWEEN 0 AND 100);
-- Set on a lead merged into another (it is soft-deleted at the same time); cleared by `leads merges undo`.
ALTER TABLE leads ADD COLUMN merged_into bigint;

-- The text substring search looks through: one trigram GIN index over one expression instead of one index per
-- field (each trigram index costs an import about as much as all the others together).
CREATE FUNCTION lead_search_text(first_name text, last_name text, email text, company text, title text)
    RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '') || ' '
                || coalesce(company, '') || ' ' || coalesce(title, '')) $$;
CREATE INDEX leads_search_trgm ON leads
    USING gin (lead_search_text(first_name, last_name, email, company, title) public.gin_trgm_ops);

-- One merge of a duplicate cluster: the survivor's row as it was before, the leads merged into it, the facts
-- moved to it and the facts the merge added, so that `leads merges undo` restores every lead exactly.
CREATE TABLE merges (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    survivor_id     bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    merged_ids      bigint[] NOT NULL,
    survivor_before jsonb NOT NULL,               -- the survivor's row before the merge
    survivor_after  timestamptz NOT NULL,         -- its updated_at after: undo refuses if it changed since
    survivor_tags   text[] NOT NULL DEFAULT '{}',
    moved_facts     jsonb NOT NULL DEFAULT '{}',   -- {fact id: the lead it belonged to}
    added_facts     bigint[] NOT NULL DEFAULT '{}',
    filled          jsonb NOT NULL DEFAULT '{}',   -- {field: the lead the value came from}
    reasons         jsonb NOT NULL DEFAULT '[]',
    score           real,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    undone_at       timestamptz
);
CREATE INDEX merges_survivor ON merges (survivor_id);
