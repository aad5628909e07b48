"""Answer checking: extract the final answer, decide equivalence with the gold, grade completions.

Policy (what counts as equal) is written in docs/grading.md and followed by
``equivalence``; model text is untrusted and never reaches ``eval``/``sympify``. Every
public entry point reads model text under a hard deadline (``guard``, ``Grader``).
The package imports nothing of m1eval but ``records``; grading a run folder (store,
manifest, cache file) is the run-level stage ``m1eval.pipeline.stages.grade_run``.
"""

from m1eval.grading.equivalence import CheckResult, check_answer, is_equivalent
from m1eval.grading.extract import DEFAULT_POLICY, RULES, PolicyError, canonical_policy, extract_answer, parse_policy
from m1eval.grading.grader import GRADER_VERSION, Grader
from m1eval.grading.guard import GradingTimeout
from m1eval.grading.normalize import normalize_answer

__all__ = [
    "DEFAULT_POLICY",
    "GRADER_VERSION",
    "RULES",
    "CheckResult",
    "Grader",
    "GradingTimeout",
    "PolicyError",
    "canonical_policy",
    "check_answer",
    "extract_answer",
    "is_equivalent",
    "normalize_answer",
    "parse_policy",
]
