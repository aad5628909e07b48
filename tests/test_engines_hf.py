"""The transformers engine on a tiny random Qwen2: per-sample seeds, finish reasons, timed greedy."""

from __future__ import annotations

import pytest
from helpers.run_helpers import assert_completion_record, collect_completions, tiny_model

from m1eval.engines.base import EngineError, GenerationRequest, ThroughputEngine
from m1eval.engines.hf import HFEngine
from m1eval.records import SamplingConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    built = HFEngine(str(tiny_model(tmp_path_factory)), options={"batch_size": 4})
    yield built
    built.close()


def _requests():
    return [
        GenerationRequest("a", "the sum of all integer", [0, 1, 2], [11, 12, 13]),
        GenerationRequest("b", "circle radius area", [0, 1, 5], [21, 22, 23]),
    ]


def test_same_seed_same_text_whatever_the_batch(engine):
    sampling = SamplingConfig(temperature=0.8, top_p=0.95, max_tokens=24)
    engine.batch_size = 4
    together = collect_completions(engine, _requests(), sampling)
    engine.batch_size = 1
    alone = collect_completions(engine, list(reversed(_requests())), sampling)
    engine.batch_size = 4
    assert set(together) == {("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 5)}
    assert {k: c.text for k, c in together.items()} == {k: c.text for k, c in alone.items()}
    # different seeds give different samples of the same prompt
    assert len({together[("a", i)].text for i in range(3)}) == 3


def test_completion_records(engine):
    sampling = SamplingConfig(temperature=0.7, top_p=1.0, max_tokens=16)
    results = list(engine.generate(_requests(), sampling))
    assert [r.timing.batch_size for r in results] == [4, 2]
    for result in results:
        assert result.timing.wall_seconds > 0
        assert result.timing.generated_tokens == sum(c.completion_tokens for c in result.completions)
        for c in result.completions:
            assert_completion_record(c, 16)
            assert c.batch_id == result.timing.batch_id


def test_eos_cut_and_reason(engine):
    eos = next(iter(engine.eos_ids))
    pad = engine.tokenizer.pad_token_id
    assert engine._cut([5, 6, eos, pad, pad], 5, False) == ([5, 6, eos], "stop")
    assert engine._cut([5, 6, 7], 3, False) == ([5, 6, 7], "length")
    assert engine._cut([5, 6, pad, pad], 4, True) == ([5, 6], "stop")


def test_greedy_is_deterministic(engine):
    sampling = SamplingConfig(temperature=0.0, top_p=0.95, max_tokens=12)
    one = collect_completions(engine, _requests(), sampling)
    two = collect_completions(engine, _requests(), sampling)
    assert {k: c.text for k, c in one.items()} == {k: c.text for k, c in two.items()}
    assert len({one[("a", i)].text for i in range(3)}) == 1


def test_timed_greedy_exact_length(engine):
    assert isinstance(engine, ThroughputEngine)
    timed = engine.timed_greedy([[5, 6, 7, 8]] * 3, 20)
    assert (timed.batch_size, timed.prompt_len, timed.gen_len, timed.generated_tokens) == (3, 4, 20, 60)
    assert timed.wall_seconds > 0 and timed.tokens_per_second > 0


def test_bad_options_and_model(tmp_path):
    with pytest.raises(EngineError, match="unknown engine option"):
        HFEngine(str(tmp_path), options={"bogus": 1})
    with pytest.raises(EngineError, match="cannot load"):
        HFEngine(str(tmp_path / "missing"))
