"""Test-only helpers: fixtures that build runs, tiny checkpoints and servers for the suite (not imported by scripts or benchmarks)."""
