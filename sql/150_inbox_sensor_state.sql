-- The drop folder sensor's state (each file's size and times, its hash, the runs it asked for), which was its
-- Dagster cursor: Dagster stores a sensor's cursor with every tick (every 10 s; skipped ticks are kept 7 days), so
-- 200 files left in the inbox took 36 KB a tick in job_ticks, ~2 GB. The state is kept here, one row a
-- generation, and the cursor names its generation: a tick Dagster never recorded (the daemon died first) is
-- evaluated again from the state its cursor names. defs/imports/sensors.py keeps the last two.
CREATE TABLE inbox_sensor_state (
    generation bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state      jsonb NOT NULL,
    saved_at   timestamptz NOT NULL DEFAULT now()
);
-- Service only: RLS on, no policy, no grant.
ALTER TABLE inbox_sensor_state ENABLE ROW LEVEL SECURITY;
