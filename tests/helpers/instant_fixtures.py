"""The fixtures of the run-folder tests that use ``InstantEngine``; a test file imports both names
(``from helpers.instant_fixtures import instant, model``), so ``instant`` is autouse only there."""

from __future__ import annotations

import pytest

from helpers import instant_engine
from helpers.instant_engine import ENGINE, InstantEngine
from helpers.run_helpers import tiny_model
from m1eval.engines import ENGINES
from m1eval.pipeline.runner import RunConfig


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


@pytest.fixture(autouse=True)
def instant(monkeypatch):
    monkeypatch.setitem(ENGINES, ENGINE, f"{instant_engine.__name__}:InstantEngine")
    monkeypatch.setattr(InstantEngine, "on_build", None)
    monkeypatch.setattr(InstantEngine, "built", 0)


def instant_config(model, data_dir, out, **changes) -> RunConfig:
    """The run-folder tests' plan: 3 aime25 problems, k = 2, 16 tokens, on InstantEngine."""
    fields = {
        "model": str(model),
        "task": "aime25",
        "k": 2,
        "engine": ENGINE,
        "limit": 3,
        "data_dir": data_dir,
        "out": out,
        "max_tokens": 16,
    }
    return RunConfig(**{**fields, **changes})


def run_cli_args(model, data_dir, out, *extra: str) -> list[str]:
    """The same plan as `m1eval run` arguments (the engine goes in ``extra``)."""
    return [
        "run",
        *("--model", str(model), "--task", "aime25", "--k", "2", "--limit", "3", "--max-tokens", "16"),
        *("--data-dir", str(data_dir), "--out", str(out)),
        *extra,
    ]
