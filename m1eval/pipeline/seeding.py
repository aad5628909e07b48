"""Per-sample seeds: sample i of problem p gets the same seed whatever the batching.

vLLM applies a request's seed to that request alone, so giving every (problem, sample)
pair its own request seed makes texts independent of batch size and chunking, and keeps
samples of different prompts uncorrelated (one seed shared by all prompts would make
sample i of every prompt draw the same random numbers).
"""

from __future__ import annotations

import hashlib


def sample_seed(run_seed: int, problem_id: str, sample_index: int) -> int:
    """A 31-bit seed from (run seed, problem id, sample index), stable across Python versions."""
    digest = hashlib.blake2b(f"{run_seed}\x1f{problem_id}\x1f{sample_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF
