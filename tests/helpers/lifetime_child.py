"""A process started by multiprocessing that follows its parent as vLLM's EngineCore does
(``m1eval.engines.lifetime.follow_parent``): importable by a spawned child, so the test can
check the spawn start method (Ray actors, CUDA) without starting vLLM."""

from __future__ import annotations

import time

from m1eval.engines.lifetime import follow_parent


def follow_and_sleep(seconds: float = 600.0) -> None:
    follow_parent()
    time.sleep(seconds)
