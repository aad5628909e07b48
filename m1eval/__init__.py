"""m1eval: test-time scaling evaluation of math reasoning models (hybrid Mamba against transformers)."""

__version__ = "0.1.0"
