"""Answer checking: extract the final answer, decide equivalence with the gold, grade runs.

Policy (what counts as equal) is written in docs/grading.md and followed by
``equivalence``; model text is untrusted and never reaches ``eval``/``sympify``.
"""

from m1eval.grading.equivalence import is_equivalent
from m1eval.grading.extract import extract_answer
from m1eval.grading.grader import GRADER_VERSION, Grader, grade_run
from m1eval.grading.normalize import normalize_answer

__all__ = ["GRADER_VERSION", "Grader", "extract_answer", "grade_run", "is_equivalent", "normalize_answer"]
