"""Generation backends behind one contract (``base.Engine``), and the registry that names them.

Adding an engine:

1. Write ``m1eval/engines/<name>.py`` with a class that inherits ``base.EngineBase``, sets
   ``name``, declares its ``option_specs`` (``options.OptionSpec``: type, help, and whether
   the option changes the samples or is secret: the run id and the manifest's redaction
   follow from that), takes ``(model, *, options=None)`` and checks them with
   ``options.checked_options``. Import the heavy library (torch, an SDK) inside ``__init__``,
   so listing engines stays cheap.
2. Implement ``generate(requests, sampling)``: yield ``BatchResult``s as batches finish
   (``base.BatchClock`` and ``base.batch_result`` time and build them), one ``Completion``
   per (problem, sample index) with that sample's seed; call ``on_progress`` when you can.
   Raise ``EngineOutOfMemory`` (``base.is_out_of_memory`` recognises one) or
   ``EngineError`` with a message that says what to change. ``close()`` frees the model
   (``base.free_accelerator``). ``timed_greedy`` makes it profilable by ``m1eval bench``.
3. Add ``"<name>": "m1eval.engines.<name>:<Class>"`` to ``ENGINES`` below.

The proof is a test in the style of ``tests/test_engines_hf.py``: same seeds give the same
texts whatever the batching, every requested sample comes back exactly once, and
``m1eval run --engine <name>`` resumes a killed run (``tests/test_run_resume.py``).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from m1eval.engines.base import EngineBase, EngineError
from m1eval.engines.options import OptionSpec, checked_options, redacted, sample_changing

# name -> "module:Class"; engines import their heavy libraries only when constructed.
ENGINES: dict[str, str] = {
    "vllm": "m1eval.engines.vllm:VLLMEngine",
    "hf": "m1eval.engines.hf:HFEngine",
    "openai": "m1eval.engines.openai:OpenAIEngine",
    "m1": "m1eval.engines.m1:M1Engine",
}


class EngineClass(Protocol):
    """What the registry hands out: an engine class, with its declared options and the constructor every engine has."""

    option_specs: dict[str, OptionSpec]

    def check_options(self, options: dict[str, Any]) -> None: ...

    def __call__(self, model: str, *, options: dict[str, Any] | None = None) -> EngineBase: ...


def engine_class(name: str) -> EngineClass:
    """The class registered under ``name`` (its module is imported now; its model is not loaded)."""
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(sorted(ENGINES))}")
    module_name, class_name = ENGINES[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def option_specs(engine: str) -> dict[str, OptionSpec]:
    """The options ``engine`` declares (importing its class, not its heavy library)."""
    return dict(engine_class(engine).option_specs)


def validate_options(engine: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``options`` against the engine's declarations (and its own ``check_options``) without building it."""
    cls = engine_class(engine)
    checked = checked_options(engine, options, dict(cls.option_specs))
    cls.check_options(checked)
    return checked


def identity_options(engine: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options that enter the run id: those the engine declares as changing the samples."""
    return sample_changing(options, option_specs(engine))


def public_options(engine: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` fit for a manifest: the engine's secret options removed."""
    return redacted(options, option_specs(engine))
