-- The verification cache, the pattern evidence and the Do-Not-Call copy written before sql/010 stayed keyed by the
-- address or number in clear until `leads keys rotate` re-keyed them: every lookup of an upgraded database (by
-- blind index) missed them, so a number on the Do-Not-Call copy was not screened, verdicts were bought again and a
-- privacy request left the addresses behind. They are re-keyed now, in Python in this migration's transaction
-- (lib/store/keys.index_legacy_keys, called by lib/store/migrations.py: a blind index needs the suppression key).
-- The tables are locked first so that no writer adds a key between the lookup of those taken and the commit.
LOCK TABLE email_verifications, email_pattern_evidence, dnc_numbers IN SHARE ROW EXCLUSIVE MODE;
