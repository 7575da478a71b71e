"""Reading, validating, augmenting and batching session data."""
