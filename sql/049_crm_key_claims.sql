-- A push batch claims the match keys of the leads it may create CRM records for by inserting them here, and deletes
-- them again before it commits: a batch of another run inserting one of those keys waits on the unique index until
-- the first has recorded its links (PostgreSQL waits for the inserting transaction), then finds them. Row claims
-- instead of advisory locks: a Bulk API job claims its 10,000 keys without filling the server's shared lock table,
-- so it no longer locks the whole connection and holds every other push of the connection back for minutes.
-- Always empty outside a batch's transaction (nothing of a person is kept); unlogged: nothing in it outlives a crash.
CREATE UNLOGGED TABLE crm_key_claims (
    connection text NOT NULL,
    key_hash   bigint NOT NULL,   -- the case-folded match key's lock id (store.crm._lock_id); a collision only waits
    PRIMARY KEY (connection, key_hash)
);
-- Service only: RLS on, no policy, no grant.
ALTER TABLE crm_key_claims ENABLE ROW LEVEL SECURITY;
