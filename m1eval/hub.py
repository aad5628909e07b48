"""Fail fast without the Hugging Face hub.

``datasets``, ``transformers`` and vLLM retry an unreachable hub with exponential backoff
(about 30 s per file here, minutes for ``m1eval tasks``) before they say anything. m1eval
instead asks the hub once, with a short deadline, before the first hub access of a
process. When the hub does not answer, the process switches the libraries to their
offline mode (``HF_HUB_OFFLINE=1``, inherited by engine subprocesses), so whatever is in
the local cache still loads and anything else fails at once; callers then turn the
failure into one line that says what to do (``OFFLINE_HINT``).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
DATA_HINT = (
    "give a data folder (data_dir) or set M1EVAL_DATA_DIR to a folder of <task>/test.jsonl "
    "(HF_HUB_OFFLINE=1 skips the hub check and uses only the local cache)"
)
MODEL_HINT = (
    "give a local model folder as the model, or download it while online (huggingface-cli download ID) "
    "(HF_HUB_OFFLINE=1 skips the hub check and uses only the local cache)"
)

_state: dict[str, str | None] = {}  # "reason": why the hub is considered offline (None: it answered)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def offline_requested() -> bool:
    """The user (or an earlier probe in this process) put the HF libraries in offline mode."""
    return any(_truthy(os.environ.get(name)) for name in OFFLINE_VARS)


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def probe(url: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when ``url`` answers any HTTP status within ``timeout`` seconds, else the reason it did not.

    Runs in a daemon thread so a name lookup that hangs (it has no timeout of its own)
    cannot hold the caller past the deadline.
    """
    import httpx

    target = url or endpoint()
    outcome: list[str | None] = []

    def ask() -> None:
        try:
            httpx.head(target, timeout=timeout, follow_redirects=False)
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            outcome.append(f"{type(exc).__name__}: {exc}".strip().rstrip(":")[:160])

    worker = threading.Thread(target=ask, daemon=True, name="m1eval-hub-probe")
    worker.start()
    worker.join(timeout + 0.5)
    if not outcome:
        return f"no answer from {target} within {timeout:g} s"
    return outcome[0]


def go_offline() -> None:
    """Switch this process (and the engine processes it starts) to the HF libraries' offline mode."""
    for name in OFFLINE_VARS:
        os.environ[name] = "1"
    # Libraries read these variables at import; flip the ones already imported too.
    # Any: modules looked up by name at run time, whose attributes mypy cannot know.
    hub_constants: Any = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True
    ds_config: Any = sys.modules.get("datasets.config")
    if ds_config is not None:
        ds_config.HF_HUB_OFFLINE = True
        ds_config.HF_DATASETS_OFFLINE = True


def offline_reason() -> str | None:
    """Why the hub cannot be used in this process, or None when it answered.

    The first call probes the hub (``PROBE_TIMEOUT_S``); an unreachable hub puts the
    process into offline mode. Later calls return the cached answer.
    """
    if "reason" in _state:
        return _state["reason"]
    if offline_requested():
        return "Hugging Face offline mode is set (HF_HUB_OFFLINE=1)"
    reason = probe()
    _state["reason"] = None if reason is None else f"the Hugging Face hub ({endpoint()}) is unreachable ({reason})"
    if reason is not None:
        go_offline()
    return _state["reason"]


def is_local(path: str | os.PathLike[str]) -> bool:
    return Path(os.path.expanduser(str(path))).exists()


def in_cache(repo_id: str, filename: str, revision: str | None = None) -> bool:
    """Whether ``filename`` of a hub model is in the local HF cache (no network, no heavy import)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, filename, revision=revision), str)
    except Exception:  # noqa: BLE001 - an id the cache cannot hold is not cached
        return False


def reset() -> None:
    """Forget the probe's answer (tests)."""
    _state.clear()
