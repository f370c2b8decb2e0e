-- Imports append the search index's trigram entries to its pending list instead of merging them into the index
-- row by row (1M rows: ~45 s less in the importing backend); the import flushes the list from a second connection
-- while it goes (gin_clean_pending_list, on the other core) and once at its end, and autovacuum flushes what other
-- writers leave. Measured per 50k-row chunk: insert 3.6 s -> 2.1 s, flush 0.85 s elsewhere.
ALTER INDEX leads_search_trgm SET (gin_pending_list_limit = 1048576);
