"""Shared fixtures. Tests never download: data come from ../shared/data, models are built here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# pytest-xdist's workers start with COLUMNS=80, and a rich Console made while COLUMNS is set keeps that
# width for good: the verbs' module-level consoles would then ignore the width each test asks for
os.environ.pop("COLUMNS", None)

SHARED_DATA = Path(os.environ.get("M1EVAL_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (SHARED_DATA / "aime25" / "test.jsonl").exists():
        pytest.fail(f"benchmark data not found at {SHARED_DATA} (set M1EVAL_DATA_DIR)")
    return SHARED_DATA
