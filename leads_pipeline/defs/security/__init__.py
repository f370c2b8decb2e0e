"""Security and compliance in Dagster: the daily retention run."""
