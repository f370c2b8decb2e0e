-- Which keys this database's values are sealed and blind-indexed under, as a check value per key (HMAC of a fixed
-- text under the key: it tells keys apart and reveals nothing of them). A process with a new leads home (another
-- machine, a container, the daemon's host) generated keys of its own: it sealed values no other process could
-- open and indexed leads that no import matched. lib/store/keys.require_database_keys refuses such keys.
CREATE TABLE key_checks (
    name        text PRIMARY KEY,
    check_value text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
-- Service only: RLS on, no policy, no grant.
ALTER TABLE key_checks ENABLE ROW LEVEL SECURITY;
