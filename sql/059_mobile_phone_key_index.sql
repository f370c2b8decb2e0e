-- A lead's mobile number is looked up by its blind index as its phone number is: a privacy request by a number, the
-- check of which of a person's numbers a lead of someone else holds too (`identifiers.shared`, one lookup per
-- address and number of theirs) and a search by phone. Without an index each lookup read the whole leads table:
-- `leads privacy export EMAIL` of one person in 200,000 leads spent ~0.3 s per identifier on that scan. Bytewise
-- (COLLATE "C") like the email and phone keys (sql/014; lib/store/db.py: key_column), led by list_id like them:
-- a search stays in its list, and a lookup in every list skips through the lists (PostgreSQL 18 skip scan).
CREATE INDEX leads_list_mobile_phone_bidx ON leads (list_id, mobile_phone_bidx COLLATE "C")
    WHERE mobile_phone_bidx IS NOT NULL;
