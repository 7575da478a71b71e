"""Paper experiments: one script per table or figure (see experiments/README.md)."""
