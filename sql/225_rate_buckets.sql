-- Provider pacing shared by every process on this database (lib/ratelimit.py: SharedTokenBucket). Each run paced
-- a provider with a bucket of its own, so four runs at once (a backfill, the drop folder's files) sent four times
-- the configured rate under one API key. One row per provider key (the provider and a hash of its credential):
-- `due` is when the calls granted so far are paid off at the rate (seconds since the epoch, the server's clock; the
-- next call may go a tolerance before it), `blocked_until` the end of the latest Retry-After. Nothing in a row
-- belongs to a process, so a killed run holds no capacity. Unlogged: every paced call updates the row, and a
-- commit that waited for the WAL's flush took 3-4 ms (~300 calls/s at most, the flush for nothing kept); a crash
-- of the server empties the table, which only fills the buckets.
CREATE UNLOGGED TABLE rate_buckets (
    key           text PRIMARY KEY,
    due           double precision NOT NULL,
    blocked_until double precision NOT NULL DEFAULT 0
);
-- Service only: RLS on, no policy, no grant.
ALTER TABLE rate_buckets ENABLE ROW LEVEL SECURITY;
