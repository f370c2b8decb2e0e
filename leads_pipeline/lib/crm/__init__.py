"""CRM sync: one connector interface, four CRMs, connection files, mapping, conflict rules and the sync engine."""
