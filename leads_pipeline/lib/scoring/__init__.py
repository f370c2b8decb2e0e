"""Lead scoring: configurable rules (completeness, company fit, engagement, recency), stages, bands and a
learned fit model. Pure logic: no database, no Dagster."""
