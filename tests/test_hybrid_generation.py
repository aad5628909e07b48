"""Batched generation: padding, n-expansion, seeds, EOS, sampling filters."""

from __future__ import annotations

import pytest
import torch

from m1eval.hybrid import load_hybrid
from m1eval.hybrid.generation import generate
from m1eval.hybrid.sampling import SamplingParams, filter_logits, uniform_noise
from m1eval.models.tiny_hybrid import build_tiny_hybrid

PROMPTS = [[5, 6, 7, 8, 9, 10, 11, 12, 13], [20, 21], [30, 31, 32, 33, 34]]
HOT = SamplingParams(temperature=1.0, top_p=0.95, top_k=50)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_hybrid(build_tiny_hybrid(tmp_path_factory.mktemp("gen"), d_model=64))


def test_batched_left_padded_greedy_equals_per_prompt(model):
    batched = generate(model, PROMPTS, max_new_tokens=12)
    for prompt, tokens in zip(PROMPTS, batched.tokens):
        assert generate(model, [prompt], max_new_tokens=12).tokens[0] == tokens
    assert len(set(map(tuple, batched.tokens))) == 3  # rows differ: no row copied another
    assert batched.prompt_lengths == [9, 2, 5] and batched.finish_reasons == ["length"] * 3


def test_eos_stops_a_row_and_compaction_keeps_the_rest_right(model):
    alone = [generate(model, [p], max_new_tokens=12).tokens[0] for p in PROMPTS]
    eos = alone[1][3]  # row 1 emits this token 4th; stop there
    batched = generate(model, PROMPTS, max_new_tokens=12, eos_token_ids=[eos])
    for tokens, reference, reason in zip(batched.tokens, alone, batched.finish_reasons):
        if eos in reference:
            cut = reference.index(eos) + 1
            assert tokens == reference[:cut] and reason == "stop"
        else:
            assert tokens == reference and reason == "length"
    ignoring = generate(model, PROMPTS, max_new_tokens=12, eos_token_ids=[eos], ignore_eos=True)
    assert ignoring.tokens == alone


def test_n_expansion_equals_repeated_prompts(model):
    seeds = [11, 12, 13, 21, 22, 31]
    expanded = generate(model, PROMPTS, max_new_tokens=10, samples_per_prompt=[3, 2, 1], seeds=seeds, sampling=HOT)
    repeated = generate(model, [PROMPTS[0]] * 3 + [PROMPTS[1]] * 2 + [PROMPTS[2]], max_new_tokens=10, seeds=seeds,
                        sampling=HOT)  # fmt: skip
    assert expanded.tokens == repeated.tokens
    assert expanded.prompt_lengths == [9, 9, 9, 2, 2, 5]
    assert len({tuple(t) for t in expanded.tokens[:3]}) == 3  # different seeds, different samples


def test_seeds_reproduce_and_do_not_depend_on_the_batch(model):
    first = generate(model, PROMPTS, max_new_tokens=10, seeds=[1, 2, 3], sampling=HOT)
    again = generate(model, PROMPTS, max_new_tokens=10, seeds=[1, 2, 3], sampling=HOT)
    alone = generate(model, [PROMPTS[2]], max_new_tokens=10, seeds=[3], sampling=HOT)
    other = generate(model, PROMPTS, max_new_tokens=10, seeds=[4, 5, 6], sampling=HOT)
    assert first.tokens == again.tokens
    assert alone.tokens[0] == first.tokens[2]
    assert all(a != b for a, b in zip(first.tokens, other.tokens))


def test_stop_test_ends_rows(model):
    out = generate(model, PROMPTS, max_new_tokens=20, stop_test=lambda row, ids: row == 0, stop_test_every=4)
    assert [len(t) for t in out.tokens] == [4, 20, 20]
    assert out.finish_reasons == ["stop", "length", "length"]


def test_bad_arguments_are_rejected(model):
    with pytest.raises(ValueError, match="seeds"):
        generate(model, PROMPTS, max_new_tokens=2, seeds=[1])
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [[]], max_new_tokens=2)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(temperature=1.0, top_p=0.0)


def test_filters_and_noise():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(filter_logits(logits, SamplingParams(1.0, top_p=0.7))).tolist()
    assert kept == [[True, True, False, False]]  # 0.5 < 0.7 so the 0.3 token is needed, then stop
    kept = torch.isfinite(filter_logits(logits, SamplingParams(1.0, top_k=1))).tolist()
    assert kept == [[True, False, False, False]]
    u = uniform_noise(torch.tensor([7, 8]), step=3, vocab=20000)
    assert u.min() > 0 and u.max() < 1 and abs(u.mean().item() - 0.5) < 0.01
    assert torch.equal(u[0], uniform_noise(torch.tensor([7]), step=3, vocab=20000)[0])
    assert not torch.equal(u[0], uniform_noise(torch.tensor([7]), step=4, vocab=20000)[0])


def test_sampling_follows_the_distribution():
    """Gumbel-max with the hash noise draws tokens at their softmax frequencies."""
    from m1eval.hybrid.sampling import sample

    probs = torch.tensor([0.6, 0.3, 0.1])
    logits = probs.log().expand(4000, 3)
    draws = sample(logits, SamplingParams(1.0), torch.arange(4000), step=0)
    freq = torch.bincount(draws, minlength=3).float() / 4000
    torch.testing.assert_close(freq, probs, atol=0.03, rtol=0)
