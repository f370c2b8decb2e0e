"""The scoring stage: lead scores per batch, the daily rescore, the learned fit model."""
