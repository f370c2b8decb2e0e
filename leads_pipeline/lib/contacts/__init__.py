"""Contact discovery and verification logic: email syntax and verdicts, address patterns, phones, LinkedIn."""
