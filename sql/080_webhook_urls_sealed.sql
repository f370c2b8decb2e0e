-- Webhook URLs (a list's --notify setting and each job's copy) carry their token. Those stored in clear before
-- they were sealed stayed in clear until the next `leads keys rotate`; they are sealed now, in Python in this
-- migration's transaction (store/migrations.py, keys.seal_clear_secrets: sealing needs the key, SQL has none).
-- The tables are locked first so that no writer adds a URL between the listing and the commit.
LOCK TABLE enrichment_jobs, list_enrichment_settings IN SHARE ROW EXCLUSIVE MODE;
