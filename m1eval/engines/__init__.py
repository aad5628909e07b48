"""Generation backends behind one contract (``base.Engine``), and the registry that names them.

Adding an engine:

1. Write ``m1eval/engines/<name>.py`` with a class that inherits ``base.EngineBase``, sets
   ``name``, declares ``option_names`` (and ``option_specs`` for their types), takes
   ``(model, *, options=None)`` and checks them with ``base.checked_options``. Import the
   heavy library (torch, an SDK) inside ``__init__``, so listing engines stays cheap.
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
from typing import Any

from m1eval.engines.base import EngineError, checked_options

# name -> "module:Class"; engines import their heavy libraries only when constructed.
ENGINES: dict[str, str] = {
    "vllm": "m1eval.engines.vllm:VLLMEngine",
    "hf": "m1eval.engines.hf:HFEngine",
    "openai": "m1eval.engines.openai:OpenAIEngine",
    "m1": "m1eval.engines.m1:M1Engine",
}


def engine_class(name: str) -> type:
    """The class registered under ``name`` (its module is imported now; its model is not loaded)."""
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(sorted(ENGINES))}")
    module_name, class_name = ENGINES[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def validate_options(engine: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``options`` against the engine's declared names and types without building it.

    Engine modules import their heavy libraries only inside the engine, so importing the
    class here is cheap; an engine that declares no ``option_names`` is not checked.
    """
    cls = engine_class(engine)
    names = getattr(cls, "option_names", None)
    if names is None:
        return dict(options or {})
    return checked_options(engine, options, names, getattr(cls, "option_specs", None))
