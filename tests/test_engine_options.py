"""Engine options: the ones that change the samples change the run id; secret ones are never stored.

The classification below is the test's own, written from what each option does, not read
from the declarations: an option declared wrongly (``served_model`` as speed-only, say) or
an option added to an engine without a decision fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from m1eval.engines import ENGINES, identity_options, option_specs
from m1eval.engines.base import EngineError
from m1eval.engines.options import OptionSpec, checked_options
from m1eval.pipeline import runner
from m1eval.pipeline.runner import RunConfig, plan_run

# engine -> options that can change the texts drawn for the same seeds
CHANGES_SAMPLES: dict[str, set[str]] = {
    "vllm": {
        "dtype",
        "hf_overrides",
        "revision",
        "tokenizer",
        "kv_cache_dtype",
        "quantization",
        "mamba_cache_dtype",
        "mamba_ssm_cache_dtype",
    },
    "hf": {"dtype", "revision", "attn_implementation"},
    "m1": {"dtype", "kernels", "tokenizer", "revision", "eos"},
    "openai": {"tokenizer", "served_model", "prompt_format"},
}
# engine -> options that change only speed, memory or where requests go
SPEED_ONLY: dict[str, set[str]] = {
    "vllm": {
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "gpu_memory_utilization",
        "max_model_len",
        "kv_cache_memory_bytes",
        "enforce_eager",
        "max_num_seqs",
        "max_num_batched_tokens",
        "trust_remote_code",
        "enable_prefix_caching",
        "seed",
        "swap_space",
        "cpu_offload_gb",
        "block_size",
        "disable_log_stats",
        "enable_chunked_prefill",
    },
    "hf": {"batch_size", "device", "trust_remote_code"},
    "m1": {"device", "max_batch", "cuda_graph"},
    "openai": {"endpoints", "concurrency", "max_retries", "timeout", "backoff", "api_key"},
}
SECRET = {("openai", "api_key")}


def _two_values(spec: OptionSpec) -> tuple[Any, Any]:
    """Two different values the spec accepts."""
    if spec.choices:
        return spec.choices[0], spec.choices[1]
    low = (spec.minimum or 0) + 1
    return {
        "int": (int(low), int(low) + 1),
        "float": (low + 0.5, low + 1.5),
        "bool": (True, False),
        "str": ("value-a", "value-b"),
        "list": (["http://a:1"], ["http://b:2"]),
        "dict": ({"a": 1}, {"a": 2}),
    }[spec.kind]


# what an engine cannot be planned without (the openai engine: a server to ask)
REQUIRED = {"openai": {"endpoints": ["http://localhost:8000"]}}


def _run_id(data_dir: Path, tmp_path: Path, engine: str, options: dict[str, Any]) -> str:
    options = {**REQUIRED.get(engine, {}), **options}
    config = RunConfig(
        model="r1-qwen-1.5b",
        task="aime25",
        k=2,
        limit=2,
        engine=engine,
        data_dir=data_dir,
        out=tmp_path,
        max_tokens=16,
        engine_options=options,
    )
    return plan_run(config).run_id


def test_every_engine_option_is_classified():
    for engine in ENGINES:
        declared = set(option_specs(engine))
        classified = CHANGES_SAMPLES[engine] | SPEED_ONLY[engine]
        assert declared == classified, f"{engine}: unclassified {declared - classified}, gone {classified - declared}"
        for name, spec in option_specs(engine).items():
            assert spec.help, f"{engine}.{name} has no help text"
            assert spec.secret == ((engine, name) in SECRET), f"{engine}.{name}"


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_an_option_that_changes_the_samples_changes_the_run_id(engine, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "resolve_model", _offline_resolve)
    base = _run_id(data_dir, tmp_path, engine, {})
    for name, spec in option_specs(engine).items():
        first, second = _two_values(spec)
        with_first = _run_id(data_dir, tmp_path, engine, {name: first})
        with_second = _run_id(data_dir, tmp_path, engine, {name: second})
        if name in CHANGES_SAMPLES[engine]:
            assert len({base, with_first, with_second}) == 3, f"{engine}: -o {name} does not change the run id"
        else:  # a run resumes with other resources
            assert base == with_first == with_second, f"{engine}: -o {name} changes the run id"


def _offline_resolve(name: str, engine: str | None = None):
    from m1eval.models.presets import resolve_model

    return resolve_model(name, engine, build=False)


def test_two_models_behind_one_endpoint_get_two_folders(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "resolve_model", _offline_resolve)
    common = {"endpoints": ["http://localhost:8000"]}
    a = _run_id(data_dir, tmp_path, "openai", {**common, "served_model": "a"})
    b = _run_id(data_dir, tmp_path, "openai", {**common, "served_model": "b"})
    assert a != b


def test_the_committed_example_keeps_its_identity_under_the_declarations():
    """The example run's stored identity carries only dtype: the declarations give the same options."""
    manifest = json.loads(
        (
            Path(__file__).resolve().parent.parent
            / "results/math500/smollm2-135m/levels1-2-t0.7-p1-max320/manifest.json"
        ).read_text(encoding="utf-8")  # by name: the README's quickstart puts its own run beside it
    )
    options = manifest["engine"]["options"]
    assert identity_options(manifest["engine"]["name"], options) == manifest["identity"]["options"]


def test_a_secret_option_never_reaches_the_manifest(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "resolve_model", _offline_resolve)
    config = RunConfig(
        model="r1-qwen-1.5b",
        task="aime25",
        k=2,
        limit=2,
        engine="openai",
        data_dir=data_dir,
        out=tmp_path,
        max_tokens=16,
        engine_options={"endpoints": ["http://localhost:1"], "api_key": "sk-SECRET-123"},
    )
    plan = plan_run(config)
    manifest = runner._manifest(plan, {}, "template-hash", {}, set())
    assert "sk-SECRET-123" not in json.dumps(manifest, default=str)
    assert manifest["engine"]["options"]["endpoints"] == ["http://localhost:1"]


def test_unknown_and_mistyped_options_name_engine_and_option():
    specs = {"width": OptionSpec("int", 1, help="w")}
    with pytest.raises(EngineError, match=r"toy: unknown engine option\(s\) \['bogus'\]"):
        checked_options("toy", {"bogus": 1}, specs)
    with pytest.raises(EngineError, match="toy: engine option width: expected an integer >= 1"):
        checked_options("toy", {"width": 0}, specs)
