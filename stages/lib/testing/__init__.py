"""Model builders for tests and the demo: tiny random-init checkpoints."""
