-- Lead scoring: the configurations and learned models scores were computed with, each lead's current score,
-- the append-only history of score changes, and the record of every stage change (automatic or manual).

-- Every scoring configuration ever used, by version (a hash of its canonical JSON): a score names the rules
-- that produced it, and the rules can be read back.
CREATE TABLE scoring_configs (
    version    text PRIMARY KEY,
    config     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Learned fit models (scikit-learn pipelines, pickled) with what they were trained on and how well they did.
CREATE TABLE scoring_models (
    version     text PRIMARY KEY,
    kind        text NOT NULL,
    features    jsonb NOT NULL,
    metrics     jsonb NOT NULL,
    training    jsonb NOT NULL DEFAULT '{}',
    model       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scoring_models_created ON scoring_models (created_at DESC);

-- The current score of each lead: one row per scored lead, replaced on every rescore. reasons are the top
-- reasons in words. (Who set a lead's stage last is the newest stage_changes row.)
CREATE TABLE lead_scores (
    lead_id        bigint PRIMARY KEY REFERENCES leads (id) ON DELETE CASCADE,
    score          smallint NOT NULL CHECK (score BETWEEN 0 AND 100),
    components     jsonb NOT NULL,
    band           text NOT NULL CHECK (band IN ('hot', 'warm', 'cold')),
    reasons        jsonb NOT NULL DEFAULT '[]',
    config_version text NOT NULL REFERENCES scoring_configs (version),
    model_version  text REFERENCES scoring_models (version),
    batch_id       text REFERENCES batches (id) ON DELETE SET NULL,
    scored_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lead_scores_score ON lead_scores (score);
CREATE INDEX lead_scores_batch ON lead_scores (batch_id);

-- Every change of a lead's score, components, stage or rules, appended; never updated.
CREATE TABLE score_history (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id        bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    score          smallint NOT NULL,
    components     jsonb NOT NULL,
    band           text NOT NULL,
    stage          text NOT NULL,
    config_version text NOT NULL,
    model_version  text,
    batch_id       text,
    scored_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX score_history_lead ON score_history (lead_id, id);

-- Every stage change: by the scoring thresholds ('auto') or by a person ('manual', with who and why).
CREATE TABLE stage_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id    bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    from_stage text NOT NULL,
    to_stage   text NOT NULL,
    source     text NOT NULL CHECK (source IN ('auto', 'manual')),
    score      smallint,
    reason     text,
    changed_by text,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stage_changes_lead ON stage_changes (lead_id, id);

-- History is evidence: rows are appended, never rewritten (deleting a lead still removes its rows).
CREATE FUNCTION refuse_history_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: rows are never updated', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER score_history_append_only BEFORE UPDATE ON score_history
    FOR EACH ROW EXECUTE FUNCTION refuse_history_update();
CREATE TRIGGER stage_changes_append_only BEFORE UPDATE ON stage_changes
    FOR EACH ROW EXECUTE FUNCTION refuse_history_update();
