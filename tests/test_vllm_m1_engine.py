"""`--engine vllm` on M1 checkpoints: seeded samples, the manifest's Mamba path, `m1eval run` and `bench` in fresh processes.

The fresh processes find the plugin only through its ``vllm.general_plugins`` entry point
(the CLI process and vLLM's engine-core process each load it), which is what a user's run does.
"""

from __future__ import annotations

import json

import pytest
from helpers.run_helpers import collect_completions, only_run_dir, raw_sample_lines, run_cli
from helpers.vllm_m1 import ensure_plugin_entry_point

from m1eval.engines.base import EngineError, GenerationRequest
from m1eval.records import SamplingConfig

pytestmark = pytest.mark.slow

VLLM_ARGS = ["-o", "max_model_len=2048", "-o", "dtype=float32", "-o", "enforce_eager=true", "-o",
             "gpu_memory_utilization=0.2", "-o", "block_size=32"]  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from m1eval.models.tiny_hybrid import build_tiny_hybrid

    ensure_plugin_entry_point(tmp_path_factory.mktemp("entry_point"))
    return build_tiny_hybrid(tmp_path_factory.mktemp("tiny-m1") / "m1", seed=5)


@pytest.fixture(scope="module")
def engine(folder):
    from m1eval.engines.vllm import VLLMEngine

    mp = pytest.MonkeyPatch()
    mp.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    built = VLLMEngine(str(folder), options={"max_model_len": 512, "dtype": "float32", "enforce_eager": True,
                                             "max_num_seqs": 16, "gpu_memory_utilization": 0.2, "block_size": 32})  # fmt: skip
    yield built
    built.close()
    mp.undo()


def _requests():
    return [
        GenerationRequest("a", "the sum of all integer", [0, 1, 2, 3], [11, 12, 13, 14]),
        GenerationRequest("b", "circle radius area", [0, 1, 2], [11, 22, 23]),
    ]


def test_seeded_samples_do_not_depend_on_the_batch(engine):
    sampling = SamplingConfig(temperature=0.9, top_p=0.95, max_tokens=16)
    together = collect_completions(engine, _requests(), sampling)
    alone = {}
    for request in reversed(_requests()):
        for index, seed in zip(request.sample_indices, request.seeds):
            alone.update(collect_completions(engine, [GenerationRequest(request.problem_id, request.prompt, [index],
                                                                        [seed])], sampling))  # fmt: skip
    assert len(together) == 7
    assert {k: c.text for k, c in together.items()} == {k: c.text for k, c in alone.items()}
    assert len({together[("a", i)].text for i in range(4)}) == 4  # own seeds: the samples differ


def test_finished_samples_are_handed_over_while_others_run(engine, monkeypatch):
    from m1eval.engines import vllm as vllm_engine

    sampling = SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=32, stop=["e", "a"])  # rows end apart
    reference = collect_completions(engine, _requests(), sampling)
    monkeypatch.setattr(vllm_engine, "FLUSH_SECONDS", 0.0)  # hand over at every step that finished something
    results = list(engine.generate(_requests(), sampling))
    assert len(results) > 1
    assert {c.key: c.text for r in results for c in r.completions} == {k: c.text for k, c in reference.items()}


def test_cpu_defaults_and_the_mamba_path_are_in_the_options(engine):
    options = engine.options
    assert options["hf_overrides"]["m1eval_mamba_path"] == "torch"
    # vLLM's Mamba prefix caching needs chunked prefill, which is off on CPU (seeded requests)
    assert options["enable_chunked_prefill"] is False and options["enable_prefix_caching"] is False


def test_an_unsupported_vllm_is_one_line(folder, monkeypatch):
    from m1eval.engines.vllm import VLLMEngine
    from m1eval.hybrid import vllm_plugin

    monkeypatch.setattr(vllm_plugin, "installed_vllm_version", lambda: "0.31.1")
    with pytest.raises(EngineError) as caught:
        VLLMEngine(str(folder), options={"dtype": "float32"})
    message = str(caught.value)
    assert "\n" not in message and "0.31.1" in message and "0.32.x" in message and "use the m1 engine" in message


def test_cli_run_vllm_and_m1_give_the_same_greedy_texts(folder, data_dir, tmp_path):
    common = ["run", "--model", str(folder), "--task", "aime25", "--limit", "2", "--k", "1", "--temperature", "0",
              "--max-tokens", "64", "--data-dir", str(data_dir), "--no-grade"]  # fmt: skip
    texts = {}
    for engine, extra in (("vllm", VLLM_ARGS), ("m1", ["-o", "dtype=float32"])):
        out = tmp_path / engine
        result = run_cli(*common, "--engine", engine, "--out", str(out), *extra)
        assert result.returncode == 0, result.stderr[-4000:]
        run_dir = only_run_dir(out)
        rows = raw_sample_lines(run_dir)
        texts[engine] = {r["problem_id"]: (r["text"], r["completion_tokens"]) for r in rows}
        if engine == "vllm":
            manifest = json.loads((run_dir / "manifest.json").read_text())
            assert manifest["engine"]["effective_options"]["hf_overrides"]["m1eval_mamba_path"] == "torch"
    assert len(texts["vllm"]) == 2
    assert texts["vllm"] == texts["m1"]
    assert all(tokens > 0 for _, tokens in texts["vllm"].values())


def test_bench_profiles_an_m1_folder(engine, folder):
    """What `m1eval bench -e vllm` runs on the engine (the CLI builds the same engine as `run`, tested above)."""
    from m1eval.throughput.bench import BenchSettings, run_bench

    settings = BenchSettings(batch_sizes=[1, 2], prompt_len=8, gen_len=16, warmup=0, repeats=1, find_peak=False,
                             gen_lens=[8, 16])  # fmt: skip
    profile = run_bench(engine, settings, model=str(folder), engine_name="vllm", engine_options=engine.options)
    points = profile.measurements
    assert {p.batch_size for p in points} >= {1, 2} and all(p.ok for p in points), points
    assert all(p.tokens_per_second > 0 for p in points)
    assert profile.engine_options["hf_overrides"]["m1eval_mamba_path"] == "torch"
