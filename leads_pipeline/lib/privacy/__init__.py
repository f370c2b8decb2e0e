"""Privacy requests (GDPR/CCPA): who a person is in the data, where their data lives, the keyed hashes that
remember an erased or opted-out person without keeping their email or phone."""
