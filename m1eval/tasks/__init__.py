"""Benchmarks. A benchmark is one TOML file in this folder (``<name>.toml``: source, field
mapping, answer format, row count and content pin), packaged with m1eval; ``loader`` reads
the rows, normalises them into ``records.Problem`` and verifies the pin."""
