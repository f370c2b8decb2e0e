-- The match keys a push is about to create CRM records for, on a connector without an upsert (Pipedrive, which
-- searches, then creates): a mark is committed before the create is sent and deleted in the transaction that records
-- the link. A run killed (or crashed) in between leaves it: the next push of that key looks for a person created
-- since sent_at in the persons list, since the search, whose index lags behind creates, may not find them yet and
-- the push created the person again. Keys are hashed as crm_key_claims' are (store.crm._lock_id); nothing of a
-- person is kept beyond the hash, and only until the link is recorded.
CREATE TABLE crm_creates_sent (
    connection text NOT NULL,
    key_hash   bigint NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT now(),  -- the first create not known to have been recorded
    PRIMARY KEY (connection, key_hash)
);
-- Service only: RLS on, no policy, no grant.
ALTER TABLE crm_creates_sent ENABLE ROW LEVEL SECURITY;
