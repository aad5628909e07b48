"""A run's stored problems checked against the hashes its manifest recorded at generation.

``problems.jsonl`` travels with a run so later stages need no data set, which also makes
it easy to edit: change a gold in it and ``grade`` would score the run against the new
one. The runner therefore records one hash per problem (``task.problem_hashes``: id,
question, golds and answer format, all that grading reads) and ``check_problems`` compares
the file with them. ``grade`` refuses a modified run (or, asked explicitly, grades it and
records that it did); ``report``, ``plot`` and the viewer mark it with the changed ids.

Runs made before per-problem hashes still have ``task.subset_hash`` (one hash over the ids,
questions and golds of all their problems): it tells whether the file changed, not which
problem. A manifest with neither cannot be checked: the run is "unverified", which is said
and never refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from m1eval.records import Problem
from m1eval.tasks.loader import canonical_sha256, content_hash

PROBLEM_HASHES = "problem_hashes"  # key of manifest["task"]: problem id -> problem_hash
VERIFIED, MODIFIED, UNVERIFIED = "verified", "modified", "unverified"
SHOWN_IDS = 5  # ids named in a one-line mark; the JSON/CSV reports carry all of them


def problem_hash(problem: Problem) -> str:
    """A short hash of what grading reads of one problem (id, question, golds, answer format)."""
    canon = {
        "id": problem.id,
        "question": problem.question,
        "answers": list(problem.answers),
        "answer_format": problem.answer_format,
    }
    return canonical_sha256(canon)[:16]


def problem_hashes(problems: Iterable[Problem]) -> dict[str, str]:
    """``problem_hash`` of every problem by id (what the manifest records)."""
    return {p.id: problem_hash(p) for p in problems}


@dataclass
class ProblemCheck:
    """How the stored problems compare with the manifest: verified, modified or unverified.

    ``modified`` lists the changed, added and removed problem ids; it is empty for a modified
    run whose manifest holds only the whole-subset hash (the ids cannot be told then).
    """

    state: str
    modified: list[str] = field(default_factory=list)
    how: str = ""  # what the check compared: "problem hashes", "subset hash", or why it could not

    @property
    def is_modified(self) -> bool:
        return self.state == MODIFIED

    def ids_text(self, limit: int = SHOWN_IDS) -> str:
        """'a, b, c and 4 more', or what is known when the ids cannot be named."""
        if not self.modified:
            return "which ones cannot be told (the manifest predates per-problem hashes)"
        shown = ", ".join(self.modified[:limit])
        return shown + (f" and {len(self.modified) - limit} more" if len(self.modified) > limit else "")

    def describe(self) -> str:
        """One line for a user (no path: the caller names the run)."""
        if self.state == MODIFIED:
            count = f"{len(self.modified)} problem(s)" if self.modified else "its problems"
            return (
                f"problems.jsonl differs from the problems the run was generated on ({self.how}): "
                f"{count} changed: {self.ids_text()}"
            )
        if self.state == UNVERIFIED:
            return f"problems.jsonl is unverified: {self.how}"
        return f"problems.jsonl verified ({self.how})"

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "modified": list(self.modified), "how": self.how}


def check_problems(manifest: dict[str, Any], problems: Iterable[Problem]) -> ProblemCheck:
    """Compare ``problems`` (as read from problems.jsonl) with the hashes in ``manifest``."""
    problems = list(problems)
    task = manifest.get("task") if isinstance(manifest, dict) else None
    task = task if isinstance(task, dict) else {}
    recorded = task.get(PROBLEM_HASHES)
    if isinstance(recorded, dict) and recorded:
        now = problem_hashes(problems)
        changed = [pid for pid, digest in now.items() if recorded.get(pid) != digest]
        removed = [str(pid) for pid in recorded if pid not in now]
        modified = changed + removed
        return ProblemCheck(MODIFIED if modified else VERIFIED, modified, "per-problem hashes")
    subset = task.get("subset_hash")
    if isinstance(subset, str) and subset:
        if content_hash(problems) == subset:
            return ProblemCheck(VERIFIED, [], "subset hash")
        return ProblemCheck(MODIFIED, [], "subset hash")
    return ProblemCheck(UNVERIFIED, [], "the manifest records no hash of the problems (a run made before m1eval did)")
