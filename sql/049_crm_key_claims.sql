-- A CRM push batch claims the match keys of the leads it may create CRM records for, and the records of its linked
-- leads, by inserting them here, and a pull's chunk the records and keys it applies; each deletes its rows again
-- before it commits. A batch or chunk of another run inserting one of those keys waits on the unique index until the
-- first has recorded its links (PostgreSQL waits for the inserting transaction), then finds them. Row claims instead
-- of advisory locks: a Bulk API job claims its 10,000 keys without filling the server's shared lock table, so it no
-- longer locks the whole connection and holds every other sync of the connection back for minutes.
-- Always empty outside a sync's transaction (nothing of a person is kept); unlogged: nothing in it outlives a crash.
CREATE UNLOGGED TABLE crm_key_claims (
    connection text NOT NULL,
    key_hash   bigint NOT NULL,   -- the hashed case-folded match key or record id (store.crm._lock_id)
    PRIMARY KEY (connection, key_hash)
);
-- Service only: RLS on, no policy, no grant.
ALTER TABLE crm_key_claims ENABLE ROW LEVEL SECURITY;
