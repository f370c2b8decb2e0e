-- A Twilio line-type answer is reused for every lead with the same number while it is fresh (lib/contacts/
-- phone_batch.py), whichever job or list bought it. The facts keep the number sealed in details; its blind index
-- (details.number_bidx, written by crypto.seal_details) is what the phone stage looks answers up by, compared
-- bytewise like the other blind-index keys (014). Partial: only line-type facts carry it.
CREATE INDEX lead_facts_line_type_number
    ON lead_facts (((details ->> 'number_bidx')) COLLATE "C", observed_at)
    WHERE field = 'phone_line_type';
