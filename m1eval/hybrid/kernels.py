"""Which implementation runs each Mamba op: the CUDA kernels when present, else ``scan``.

mamba_ssm and causal_conv1d are optional: they only build against a CUDA torch. The
mixer asks ``pick(name, device)`` for a function with the kernel's signature; on CUDA
that is the installed kernel, on CPU (or when a kernel is missing) the PyTorch reference
in ``scan``. A missing kernel on a CUDA run is worth knowing (it is 10-100x slower), so
the first fallback emits ONE warning listing every missing kernel, and then stays quiet.

Also here: ``CapturedDecode``, the CUDA-graph wrapper of one decode step. Decoding a
3B model at small batch is launch-bound (hundreds of small kernels per token), which a
graph replay removes.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

import torch

from m1eval.hybrid import scan

# kernel name -> (module, attribute) in mamba_ssm 2.x / causal_conv1d >= 1.2
SOURCES: dict[str, tuple[str, str]] = {
    "selective_scan_fn": ("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn"),
    "selective_state_update": ("mamba_ssm.ops.triton.selective_state_update", "selective_state_update"),
    "causal_conv1d_fn": ("causal_conv1d", "causal_conv1d_fn"),
    "causal_conv1d_update": ("causal_conv1d", "causal_conv1d_update"),
}
REFERENCE: dict[str, Callable] = {name: getattr(scan, name) for name in SOURCES}
MODES = ("auto", "torch", "kernels")

_mode = "auto"
_loaded: dict[str, Callable | None] = {}
_warned = False


def import_past_package_init(module_name: str) -> ModuleType:
    """Import ``pkg.sub.module`` without running ``pkg/__init__.py``.

    mamba_ssm's ``__init__`` imports its compiled ``selective_scan_cuda``; installed without
    compiling (``MAMBA_SKIP_CUDA_BUILD=TRUE``, the only install a GPU machine without a
    compiler budget gets) the package cannot be imported, although its Triton
    ``selective_state_update`` needs no compiled code. A bare package module standing in
    for the top level lets the submodule load.
    """
    top = module_name.partition(".")[0]
    if top not in sys.modules:
        spec = importlib.util.find_spec(top)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"no package {top!r}")
        package = ModuleType(top)
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules[top] = package
    return importlib.import_module(module_name)


def _load(name: str) -> Callable | None:
    if name not in _loaded:
        module_name, attr = SOURCES[name]
        _loaded[name] = None
        for importer in (importlib.import_module, import_past_package_init):
            try:
                _loaded[name] = getattr(importer(module_name), attr)
                break
            except Exception:  # noqa: BLE001, S112 - ImportError, or a wheel built for another torch/CUDA
                continue
    return _loaded[name]


def available() -> dict[str, bool]:
    return {name: _load(name) is not None for name in SOURCES}


def set_mode(mode: str) -> None:
    """auto: kernels on CUDA tensors only; torch: never; kernels: always (tests, with fakes)."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"kernel mode must be one of {MODES}, got {mode!r}")
    _mode = mode


def get_mode() -> str:
    return _mode


@contextmanager
def kernel_mode(mode: str) -> Iterator[None]:
    previous = _mode
    set_mode(mode)
    try:
        yield
    finally:
        set_mode(previous)


def reset_warning() -> None:
    global _warned
    _warned = False


def _warn_missing() -> None:
    global _warned
    if _warned:
        return
    _warned = True
    missing = [name for name, ok in available().items() if not ok]
    warnings.warn(
        f"Mamba CUDA kernels not available ({', '.join(missing)}); using the PyTorch reference path, which is "
        "much slower. Install mamba-ssm and causal-conv1d built for this torch to get the fast path.",
        RuntimeWarning,
        stacklevel=3,
    )


def pick(name: str, device: torch.device) -> Callable:
    """The function to run kernel ``name`` on tensors living on ``device``."""
    if _mode == "torch" or (_mode == "auto" and device.type != "cuda"):
        return REFERENCE[name]
    fn = _load(name)
    if fn is None:
        _warn_missing()
        return REFERENCE[name]
    return fn


class CapturedDecode:
    """One decode step recorded as a CUDA graph over static input/output buffers.

    ``step(**static_inputs)`` must only read its inputs and update caches in place (no
    Python-side shapes that change between steps: slot indices and masks are tensors).
    Warm-up runs execute for real and would advance the caches, so the cache tensors in
    ``state`` are snapshotted before and restored after; capture itself executes nothing.
    """

    def __init__(self, step: Callable[..., torch.Tensor], static_inputs: dict[str, torch.Tensor],
                 state: list[torch.Tensor], warmup: int = 2) -> None:  # fmt: skip
        self.inputs = static_inputs
        snapshot = [t.clone() for t in state]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(warmup):
                step(**static_inputs)
        torch.cuda.current_stream().wait_stream(stream)
        for target, saved in zip(state, snapshot):
            target.copy_(saved)
        del snapshot
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = step(**static_inputs)

    def __call__(self, **inputs: torch.Tensor) -> torch.Tensor:
        for name, value in inputs.items():
            self.inputs[name].copy_(value)
        self.graph.replay()
        return self.output
