"""m1eval: test-time scaling evaluation of math reasoning models (hybrid Mamba against transformers).

The packages, bottom up (a lower one never imports a higher one; ``tests/test_layers.py``):
``records`` and ``hub`` (shared record types, hub access), ``tasks`` / ``rundir`` / ``grading`` /
``hybrid`` (benchmarks, run folders, answer checking, the M1 model), ``models`` (presets,
prompts, the embedded model), ``engines``, ``throughput``, ``analysis``, ``figures``, ``view``,
``pipeline`` (planning, generating, grading a stored run) and ``cli``.

The names a notebook needs are importable from here; they load on first use, so
``import m1eval`` stays cheap (no pandas, sympy or torch until asked for).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "load_run": "m1eval.rundir.rundata",
    "load_runs": "m1eval.rundir.rundata",
    "RunData": "m1eval.rundir.rundata",
    "summarize_run": "m1eval.analysis.report",
    "compare_runs": "m1eval.analysis.report",
    "metric_curve": "m1eval.analysis.curves",
    "REGISTRY": "m1eval.analysis.metrics",
    "register_metric": "m1eval.analysis.metrics",
    "Metric": "m1eval.analysis.metrics",
    "check_answer": "m1eval.grading",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'm1eval' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
