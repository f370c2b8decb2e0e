-- A mark of a CRM create (sql/079) names the lead it was made for: a hash of the key alone could not be told to be
-- a person's, so leads privacy delete left the marks of a push killed before it recorded its links (they stayed
-- until that key's next push, which an erased person never has). The privacy registry now erases a person's marks
-- with their leads, and a mark goes with its lead (a purged list, retention, an undone import). sql/079 ships with
-- this file: a mark written in between (a development database) names no lead and is dropped, as a push killed
-- that long ago has nothing left to find in the CRM's lagging search.
DELETE FROM crm_creates_sent;
ALTER TABLE crm_creates_sent ADD COLUMN lead_id bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE;
CREATE INDEX crm_creates_sent_lead ON crm_creates_sent (lead_id);
