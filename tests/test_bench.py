"""Bench orchestration (warm-ups, repeats, peak search, OOM) against a fake timed engine.

The engine is faked because it is not under test here: its "clock" is a formula, so the
expected throughputs and the batch at which the peak search stops are known exactly.
Real engines are profiled in test_bench_engines.py.
"""

from __future__ import annotations

import json

import pytest

from m1eval.engines.base import EngineOutOfMemory, TimedGeneration
from m1eval.throughput.bench import Bencher, BenchError, BenchSettings, random_prompts, run_bench
from m1eval.throughput.profile import ProfileError, ThroughputProfile


class FakeEngine:
    """tokens/s = rate(batch); raises OOM above ``max_fit``; records every call."""

    name = "fake"
    vocab_size = 1000

    def __init__(self, rate, max_fit=10**9, wrong_tokens=False):
        self.rate = rate
        self.max_fit = max_fit
        self.calls: list[tuple[int, int]] = []
        self.wrong_tokens = wrong_tokens
        self.prompts_seen: list[list[list[int]]] = []

    def timed_greedy(self, prompt_token_ids, gen_len):
        batch = len(prompt_token_ids)
        self.calls.append((batch, gen_len))
        self.prompts_seen.append(prompt_token_ids)
        if batch > self.max_fit:
            raise EngineOutOfMemory(f"batch {batch} does not fit")
        tokens = batch * gen_len - (1 if self.wrong_tokens else 0)
        # Repeat-dependent jitter so "mean of repeats" is checkable: +0%, +10%, +20% ...
        jitter = 1 + 0.1 * (len([c for c in self.calls if c == (batch, gen_len)]) - 1)
        wall = batch * gen_len / self.rate(batch) * jitter
        return TimedGeneration(batch, len(prompt_token_ids[0]), gen_len, wall, tokens)


def saturating(batch):
    """100 tok/s per sequence up to 64 sequences, flat after: peak reached at 64."""
    return 100.0 * min(batch, 64)


def test_warmups_then_mean_of_repeats():
    engine = FakeEngine(saturating)
    settings = BenchSettings(batch_sizes=[4], prompt_len=8, gen_len=16, warmup=2, repeats=3, find_peak=False)
    point = Bencher(engine, settings, vocab_size=1000).measure("batch", 4, 16)
    assert engine.calls == [(4, 16)] * 5
    # Warm-ups are runs 1-2 (jitter 1.0, 1.1); timed repeats are runs 3-5: jitter 1.2, 1.3, 1.4.
    base = 4 * 16 / 400.0
    assert point.repeat_seconds == pytest.approx([base * 1.2, base * 1.3, base * 1.4])
    assert point.wall_seconds == pytest.approx(base * 1.3)
    assert point.tokens_per_second == pytest.approx(64 / (base * 1.3))
    assert point.ms_per_token == pytest.approx(1000 * base * 1.3 / 16)


def test_prompts_have_requested_shape_and_skip_special_ids():
    prompts = random_prompts(3, 17, 512, seed=1)
    assert len(prompts) == 3 and all(len(p) == 17 for p in prompts)
    ids = [t for p in prompts for t in p]
    assert min(ids) >= 512 // 16 and max(ids) < 512
    assert prompts != random_prompts(3, 17, 512, seed=2)


def test_peak_search_doubles_until_throughput_stops_rising():
    engine = FakeEngine(saturating)
    settings = BenchSettings(batch_sizes=[1, 8], prompt_len=4, gen_len=8, warmup=0, repeats=1)
    bencher = Bencher(engine, settings, vocab_size=1000)
    points = bencher.batch_sweep()
    # 8 -> 16 -> 32 -> 64 rise; 128 is flat, so the search stops there.
    assert [p.batch_size for p in points] == [1, 8, 16, 32, 64, 128]
    prof = ThroughputProfile(model="fake", engine="fake", measurements=bencher.measurements)
    assert prof.peak.batch_size == 64
    assert prof.peak.tokens_per_second == pytest.approx(6400.0)


def test_peak_search_stops_at_out_of_memory_and_keeps_finished_points():
    engine = FakeEngine(saturating, max_fit=16)
    settings = BenchSettings(batch_sizes=[1, 8, 32, 128], prompt_len=4, gen_len=8, warmup=1, repeats=1)
    bencher = Bencher(engine, settings, vocab_size=1000)
    points = bencher.batch_sweep()
    assert [(p.batch_size, p.status) for p in points] == [(1, "ok"), (8, "ok"), (32, "oom")]
    assert "does not fit" in points[-1].error
    assert (128, 8) not in engine.calls  # nothing larger is tried after an OOM
    prof = ThroughputProfile(model="fake", engine="fake", measurements=bencher.measurements)
    assert prof.oom_batch_size == 32 and prof.peak.batch_size == 8


def test_no_peak_search_when_largest_batch_is_not_best():
    engine = FakeEngine(lambda b: 1000.0 / b)  # throughput falls with batch
    settings = BenchSettings(batch_sizes=[1, 2, 4], prompt_len=4, gen_len=8, warmup=0, repeats=1)
    points = Bencher(engine, settings, vocab_size=1000).batch_sweep()
    assert [p.batch_size for p in points] == [1, 2, 4]


def test_engine_that_stops_early_is_an_error_not_a_fast_point():
    engine = FakeEngine(saturating, wrong_tokens=True)
    settings = BenchSettings(batch_sizes=[2], prompt_len=4, gen_len=8, warmup=0, repeats=1, find_peak=False)
    point = Bencher(engine, settings, vocab_size=1000).measure("batch", 2, 8)
    assert point.status == "error" and "EOS ignored" in point.error


def test_run_bench_writes_profile_with_length_sweep(tmp_path):
    engine = FakeEngine(saturating)
    settings = BenchSettings(batch_sizes=[1, 4], prompt_len=4, gen_len=32, warmup=0, repeats=2, find_peak=False)
    prof = run_bench(engine, settings, model="org/fake-model", engine_name="fake")
    lengths = prof.points("length")
    assert prof.settings["length_batch"] == 4  # defaults to the peak batch
    assert [m.gen_len for m in lengths] == [4, 8, 16, 32]
    assert all(m.batch_size == 4 for m in lengths)
    # (4, 32) was already measured in the batch sweep: reused, not re-run.
    assert engine.calls.count((4, 32)) == 2
    path = prof.save(tmp_path / "p.json")
    data = json.loads(path.read_text())
    assert data["peak"]["batch_size"] == 4
    assert data["hardware"]["cpu_count"] >= 1 and "python" in data["versions"]
    again = ThroughputProfile.load(path)
    assert again.name == "fake-model"
    assert again.throughput_at(4) == pytest.approx(prof.throughput_at(4))


def test_settings_are_validated():
    with pytest.raises(BenchError, match="batch_sizes"):
        Bencher(FakeEngine(saturating), BenchSettings(batch_sizes=[0]), vocab_size=10)
    with pytest.raises(BenchError, match="timed_greedy"):
        Bencher(object(), BenchSettings(), vocab_size=10)


def test_profile_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="bad.json"):
        ThroughputProfile.load(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(
        json.dumps(
            {
                "model": "m",
                "engine": "e",
                "measurements": [{"sweep": "sideways", "batch_size": 1, "prompt_len": 1, "gen_len": 1}],
            }
        )
    )
    with pytest.raises(ProfileError, match="wrong.json: measurement 0"):
        ThroughputProfile.load(wrong)
    with pytest.raises(ProfileError, match="no such profile"):
        ThroughputProfile.load(tmp_path / "missing.json")


def test_engine_options_can_be_scoped_to_one_engine():
    from m1eval.cli.common import parse_engine_options

    parsed = parse_engine_options(
        ["dtype=bfloat16", "vllm:max_num_seqs=512", "vllm:enforce_eager=true", "m1:max-batch=64"]
    )
    assert parsed == {
        None: {"dtype": "bfloat16"},
        "vllm": {"max_num_seqs": 512, "enforce_eager": True},
        "m1": {"max_batch": 64},
    }


def test_interrupt_keeps_finished_points(tmp_path):
    class Interrupting(FakeEngine):
        def timed_greedy(self, prompt_token_ids, gen_len):
            if len(prompt_token_ids) == 4:
                raise KeyboardInterrupt
            return super().timed_greedy(prompt_token_ids, gen_len)

    settings = BenchSettings(batch_sizes=[1, 2, 4, 8], prompt_len=4, gen_len=8, warmup=0, repeats=1)
    prof = run_bench(Interrupting(saturating), settings, model="m", engine_name="fake")
    assert prof.settings["interrupted"] is True
    assert [(m.batch_size, m.status) for m in prof.measurements] == [(1, "ok"), (2, "ok")]
    again = ThroughputProfile.load(prof.save(tmp_path / "partial.json"))
    assert again.peak.batch_size == 2
