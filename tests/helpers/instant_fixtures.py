"""The fixtures of the run-folder tests that use ``InstantEngine``; a test file imports both names
(``from helpers.instant_fixtures import instant, model``), so ``instant`` is autouse only there."""

from __future__ import annotations

import pytest

from helpers import instant_engine
from helpers.instant_engine import ENGINE, InstantEngine
from helpers.run_helpers import tiny_model
from m1eval.engines import ENGINES


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


@pytest.fixture(autouse=True)
def instant(monkeypatch):
    monkeypatch.setitem(ENGINES, ENGINE, f"{instant_engine.__name__}:InstantEngine")
    monkeypatch.setattr(InstantEngine, "on_build", None)
    monkeypatch.setattr(InstantEngine, "built", 0)
