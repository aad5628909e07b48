"""The m1 engine on a tiny M1-style checkpoint: protocol, seeds, stop strings, timing."""

from __future__ import annotations

import pytest

from m1eval.engines import engine_class
from m1eval.engines.base import EngineError, GenerationRequest, ThroughputEngine
from m1eval.models.tiny_hybrid import build_tiny_hybrid
from m1eval.records import SamplingConfig


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = build_tiny_hybrid(tmp_path_factory.mktemp("eng"), d_model=64)
    eng = engine_class("m1")(str(folder), options={"max_batch": 3})
    yield eng
    eng.close()


def _prompt(engine, text):
    return engine.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                add_generation_prompt=True)  # fmt: skip


def test_generate_yields_every_sample_once_with_its_seed(engine):
    requests = [
        GenerationRequest("p1", _prompt(engine, "find the sum of 2 and 3"), [0, 1, 2], [101, 102, 103]),
        GenerationRequest("p2", _prompt(engine, "area of a circle"), [1, 4], [201, 204]),
    ]
    sampling = SamplingConfig(temperature=0.7, top_p=1.0, max_tokens=12, seed=0)
    batches = list(engine.generate(requests, sampling))
    assert [b.timing.batch_size for b in batches] == [3, 2]  # max_batch 3
    got = {(c.problem_id, c.sample_index): c for b in batches for c in b.completions}
    assert set(got) == {("p1", 0), ("p1", 1), ("p1", 2), ("p2", 1), ("p2", 4)}
    assert got["p2", 4].seed == 204
    for batch in batches:
        assert batch.timing.engine == "m1" and batch.timing.wall_seconds > 0
        assert batch.timing.generated_tokens == sum(c.completion_tokens for c in batch.completions)
        assert batch.extra["prefill_seconds"] > 0
    prompt_len = len(engine.tokenizer(requests[0].prompt, add_special_tokens=False)["input_ids"])
    c = got["p1", 0]
    assert c.prompt_tokens == prompt_len and c.finish_reason in ("stop", "length")
    assert c.prefix_chars[str(c.completion_tokens)] == len(c.text)
    # the same seeds give the same texts in a different batching
    alone = list(engine.generate([GenerationRequest("p2", requests[1].prompt, [4], [204])], sampling))
    assert alone[0].completions[0].text == got["p2", 4].text


def test_stop_strings_cut_the_text(engine):
    request = GenerationRequest("p", _prompt(engine, "think step by step"), [0], [5])
    full = next(engine.generate([request], SamplingConfig(temperature=0.0, top_p=0.95, max_tokens=16))).completions[0]
    assert len(full.text) > 4
    stop = full.text[2:4]
    cut = next(
        engine.generate([request], SamplingConfig(temperature=0.0, top_p=0.95, max_tokens=16, stop=[stop]))
    ).completions[0]
    assert cut.text == full.text[: full.text.find(stop)] and cut.finish_reason == "stop"
    assert cut.completion_tokens <= full.completion_tokens


def test_timed_greedy(engine):
    assert isinstance(engine, ThroughputEngine)
    timed = engine.timed_greedy([[5, 6, 7, 8], [9, 10]], gen_len=7)
    assert timed.generated_tokens == 14 and timed.batch_size == 2 and timed.prompt_len == 4
    assert timed.tokens_per_second > 0 and timed.prefill_seconds > 0


def test_bad_options_and_paths(tmp_path):
    with pytest.raises(EngineError, match="unknown engine option"):
        engine_class("m1")(str(tmp_path), options={"gpu_memory_utilization": 0.3})
    with pytest.raises(EngineError, match="neither a local folder nor in the local"):
        engine_class("m1")("no-such-org/no-such-model")
    with pytest.raises(EngineError, match="config.json"):
        engine_class("m1")(str(tmp_path))
