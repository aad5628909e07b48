"""One prepared device check of the native M1 engine on a CUDA GPU: correctness, speed, m1eval bench.

A GPU is lent for minutes, so everything is decided here and the run only measures:

1. Correctness. A random-weight hybrid in the M1-3B shape (28 layers, d_model = d_inner =
   3072, d_xb 1024, d_state 16, d_conv 4, dt_rank 192, MLP 8192, 24 query / 8 KV heads,
   6 attention layers, the Llama-3.2 vocabulary) runs a left-padded batch on CUDA (fp32
   PyTorch path; bf16 PyTorch path; bf16 with every kernel that imports) against the fp32
   CPU reference on the same weights. Then prefill + decode against one full forward, and
   CUDA-graph decode against eager decode (greedy tokens).
2. Speed, the paper's protocol: decode tokens/s of greedy generation with EOS ignored after
   a 256-token prompt, mean of 3 timed runs, at batch 1, 8, 32, 128, 256, 512, for the M1
   engine (kernels, CUDA graphs) and a transformers Llama-3.2-3B-shaped random model
   (SDPA, static cache), with peak memory. The paper generates 4,096 tokens; this script
   shortens the generation per batch so that the whole check fits its time budget, the
   same length for both models at a batch, and records the length it used.
3. m1eval itself: ``m1eval bench -e m1`` and ``-e hf`` on the same two models, written as
   ordinary throughput profiles that ``m1eval budget`` can price k from.

Writes ``gpu_check.json`` and ``gpu_check.png`` (and the bench profiles under ``bench/``)
to ``--out`` (default ``$OUT``). Refuses to run without CUDA; ``--quick`` (a tiny shape,
batch 8) is the first, under-a-minute device call. ``--allow-cpu`` exists for the CPU
tests of this script's logic and is hidden from ``--help``.

    python benchmarks/gpu_check.py --quick          # first call on a new device
    python benchmarks/gpu_check.py --budget-s 420   # the full check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from m1eval.hybrid import kernels
from m1eval.hybrid.config import HybridConfig
from m1eval.hybrid.generation import generate, left_pad
from m1eval.hybrid.loading import build_hybrid
from m1eval.hybrid.model import HybridForCausalLM

LLAMA32_VOCAB = 128256
NO_CUDA = ("gpu_check needs a CUDA GPU: torch.cuda.is_available() is False on this machine. Run it on the "
           "device machine (docs/gpu/README.md says how); --quick makes the first call short.")  # fmt: skip

# bf16 keeps 8 significant bits (unit roundoff 2^-9 ~ 2e-3 per rounding). 28 residual layers
# of random weights accumulate independent roundings roughly like sqrt(#roundings): a relative
# L2 error of a few 1e-2 on the logits is bf16 working correctly, 1e-1 or more is a bug (a wrong
# kernel argument gives O(1)). fp32 on CUDA (TF32 off) differs from the CPU only in summation
# order: 1e-4 relative is generous. Argmax agreement guards the quantity sampling uses.
TOLERANCES = {
    "float32": {"rel_l2": 1e-4, "top1": 0.999},
    "bfloat16": {"rel_l2": 5e-2, "top1": 0.90},
}


@dataclass(frozen=True)
class Shape:
    """The model shapes of one check (the same for M1 and the Llama it is compared with)."""

    vocab: int
    d_model: int
    n_layer: int
    attn_layers: tuple[int, ...]
    d_xb: int
    dt_rank: int
    intermediate: int
    heads: int
    kv_heads: int

    def hybrid(self) -> HybridConfig:
        return HybridConfig(
            vocab_size=self.vocab, d_model=self.d_model, d_inner=self.d_model, d_xb=self.d_xb, n_layer=self.n_layer,
            attn_layers=self.attn_layers, intermediate_size=self.intermediate, num_attention_heads=self.heads,
            num_key_value_heads=self.kv_heads, head_dim=self.d_model // self.heads, dt_rank=self.dt_rank,
            rope_theta=500000.0, eos_token_ids=(1,), pad_token_id=0,
        )  # fmt: skip


# M1-3B: Llama-3.2-3B's width, heads and MLP; 6 attention layers spread over the 28.
M1_3B = Shape(vocab=LLAMA32_VOCAB, d_model=3072, n_layer=28, attn_layers=(2, 7, 12, 17, 22, 27), d_xb=1024,
              dt_rank=192, intermediate=8192, heads=24, kv_heads=8)  # fmt: skip
QUICK = Shape(vocab=4096, d_model=256, n_layer=4, attn_layers=(2,), d_xb=128, dt_rank=16, intermediate=512,
              heads=4, kv_heads=2)  # fmt: skip


class Deadline:
    """Seconds left of the check's budget; stages skip (and say so) rather than overrun."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def log(message: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------- models


@torch.no_grad()
def random_hybrid_state(config: HybridConfig, device: torch.device, seed: int) -> dict[str, torch.Tensor]:
    """Random fp32 weights with the magnitudes of a trained Mamba (dt 1e-3..1e-1, A = -1..-d_state)."""
    with torch.device(device):
        model = HybridForCausalLM(config)
    gen = torch.Generator(device=device).manual_seed(seed)
    state = {}
    for name, tensor in model.state_dict().items():
        shape = tuple(tensor.shape)
        if name.endswith("norm.weight"):
            value = 1.0 + 0.1 * torch.randn(shape, generator=gen, device=device)
        elif name.endswith("A_log"):
            base = torch.log(torch.arange(1, config.d_state + 1, dtype=torch.float32, device=device))
            value = base.repeat(shape[0], 1) + 0.1 * torch.randn(shape, generator=gen, device=device)
        elif name.endswith(".D"):
            value = 1.0 + 0.1 * torch.randn(shape, generator=gen, device=device)
        elif name.endswith("dt_proj.bias"):
            dt = torch.empty(shape, device=device).uniform_(1e-3, 1e-1, generator=gen)
            value = torch.log(torch.expm1(dt)) / 2  # the model adds the bias twice
        elif name.endswith(("conv1d.weight", "conv1d.bias")):
            value = 0.3 * torch.randn(shape, generator=gen, device=device)
        elif name == "model.embed_tokens.weight":
            value = torch.randn(shape, generator=gen, device=device)
        else:
            value = torch.randn(shape, generator=gen, device=device) / math.sqrt(shape[-1])
        state[name] = value.float().contiguous()
    del model
    return state


def llama_model(shape: Shape, device: torch.device, dtype: torch.dtype) -> Any:
    """A random transformers Llama of the same width, depth, heads and MLP (Llama-3.2-3B's shape)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=shape.vocab, hidden_size=shape.d_model, intermediate_size=shape.intermediate,
        num_hidden_layers=shape.n_layer, num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
        head_dim=shape.d_model // shape.heads, rope_theta=500000.0, max_position_embeddings=8192,
        tie_word_embeddings=True, attn_implementation="sdpa", pad_token_id=0, bos_token_id=1, eos_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    return model.eval()


# ---------------------------------------------------------------------------- correctness


def compare(got: torch.Tensor, ref: torch.Tensor, dtype_name: str) -> dict[str, Any]:
    """Error figures of ``got`` against the fp32 reference, and whether they are within tolerance."""
    got, ref = got.detach().float().cpu(), ref.detach().float().cpu()
    diff = got - ref
    rel_l2 = float(diff.norm() / ref.norm().clamp_min(1e-30))
    top1 = float((got.argmax(-1) == ref.argmax(-1)).float().mean())
    tol = TOLERANCES[dtype_name]
    return {
        "max_abs": float(diff.abs().max()), "ref_max_abs": float(ref.abs().max()), "rel_l2": rel_l2, "top1": top1,
        "tolerance": tol, "finite": bool(torch.isfinite(got).all()),
        "ok": bool(torch.isfinite(got).all()) and rel_l2 <= tol["rel_l2"] and top1 >= tol["top1"],
    }  # fmt: skip


def _prompts(vocab: int, lengths: list[int], seed: int) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(8, vocab, (n,), generator=gen).tolist() for n in lengths]


@torch.no_grad()
def check_correctness(shape: Shape, device: torch.device, lengths: list[int], decode_steps: int,
                      graph_tokens: int) -> dict[str, Any]:  # fmt: skip
    config = shape.hybrid()
    state = random_hybrid_state(config, device, seed=0)
    cpu_state = {k: v.cpu() for k, v in state.items()}
    prompts = _prompts(config.vocab_size, lengths, seed=1)
    ids, mask = left_pad(prompts, config.pad_token_id or 0, torch.device("cpu"))
    valid = mask.bool()
    t0 = time.perf_counter()
    reference = build_hybrid(config, dict(cpu_state), torch.device("cpu"), torch.float32)
    ref_logits = reference(ids, mask).logits[valid]
    out: dict[str, Any] = {"batch_lengths": lengths, "cpu_reference_seconds": time.perf_counter() - t0,
                           "variants": {}, "kernels": check_kernels(device)}  # fmt: skip
    del reference
    available = kernels.available()
    variants = [("fp32-torch", torch.float32, "torch"), ("bf16-torch", torch.bfloat16, "torch")]
    if device.type == "cuda" and any(available.values()):
        variants.append(("bf16-kernels", torch.bfloat16, "auto"))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for name, dtype, mode in variants:
        model = build_hybrid(config, dict(state), device, dtype)
        with kernels.kernel_mode(mode):
            logits = model(ids.to(device), mask.to(device)).logits[valid.to(device)]
        result = compare(logits, ref_logits, "float32" if dtype == torch.float32 else "bfloat16")
        result["kernels"] = dict(available.items()) if mode == "auto" else "none (PyTorch path)"
        out["variants"][name] = result
        log(f"logits {name}: rel_l2 {result['rel_l2']:.2e}, top1 {result['top1']:.3f}, ok={result['ok']}")
        del model
    # prefill + decode against one full forward, and CUDA-graph decode against eager, on the
    # fastest variant (what the engine runs)
    fast_dtype, fast_mode = variants[-1][1], variants[-1][2]
    dtype_name = "float32" if fast_dtype == torch.float32 else "bfloat16"
    model = build_hybrid(config, dict(state), device, fast_dtype)
    ids_d, mask_d = ids.to(device), mask.to(device)
    with kernels.kernel_mode(fast_mode):
        full = model(ids_d, mask_d).logits[:, -decode_steps:]
        eager = _stepped_logits(model, ids_d, mask_d, decode_steps, graph=False)
        out["prefill_decode_vs_full"] = compare(eager, full, dtype_name)
        log(f"prefill+decode vs full: rel_l2 {out['prefill_decode_vs_full']['rel_l2']:.2e}")
        if device.type == "cuda":
            # teacher-forced, so a near-tie that flips one greedy token cannot hide or fake a difference
            graphed = _stepped_logits(model, ids_d, mask_d, decode_steps, graph=True)
            out["cuda_graph_vs_eager"] = compare(graphed, eager, dtype_name)
            # and free-running greedy tokens, for information (bf16 near-ties may flip late tokens)
            tokens_eager = generate(model, prompts, max_new_tokens=graph_tokens, ignore_eos=True,
                                    cuda_graph=False).tokens  # fmt: skip
            tokens_graph = generate(model, prompts, max_new_tokens=graph_tokens, ignore_eos=True,
                                    cuda_graph=True).tokens  # fmt: skip
            out["cuda_graph_vs_eager"]["greedy_tokens"] = _token_agreement(tokens_graph, tokens_eager)
            log(
                f"CUDA graph vs eager: rel_l2 {out['cuda_graph_vs_eager']['rel_l2']:.2e}, "
                f"greedy tokens {out['cuda_graph_vs_eager']['greedy_tokens']}"
            )
        else:
            out["cuda_graph_vs_eager"] = {"skipped": "no CUDA: graphs need a GPU"}
    out["ok"] = all(v["ok"] for v in out["variants"].values()) and out["prefill_decode_vs_full"]["ok"] and \
        out["cuda_graph_vs_eager"].get("ok", True) and \
        all(k.get("ok", True) for k in out["kernels"].values())  # fmt: skip
    return out


def _kernel_inputs(name: str, device: torch.device, gen: torch.Generator) -> tuple[tuple, dict, list[int]]:
    """Random fp32 inputs in the layout the mixer passes; the last item lists in-place state arguments."""

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, device=device)

    b, heads, width, n, length, conv = 4, 16, 16, 16, 64, 4
    dim = heads * width
    if name == "selective_scan_fn":
        return ((r(b, dim, length), r(b, dim, length).abs() * 0.1, -torch.rand(dim, n, generator=gen, device=device),
                 r(b, heads, n, length), r(b, heads, n, length), r(dim)),
                {"z": r(b, dim, length), "delta_bias": r(dim) * 0.1, "delta_softplus": True,
                 "return_last_state": True}, [])  # fmt: skip
    if name == "selective_state_update":
        return ((r(b, heads, width, n), r(b, heads, width), r(b, heads, width),
                 -torch.rand(heads, width, n, generator=gen, device=device), r(b, heads, n), r(b, heads, n),
                 r(heads, width)), {"z": r(b, heads, width), "dt_bias": r(heads, width), "dt_softplus": True}, [0])  # fmt: skip
    if name == "causal_conv1d_fn":
        return (), {"x": r(b, dim, length), "weight": r(dim, conv), "bias": r(dim), "activation": "silu"}, []
    return (r(b, dim), r(b, dim, conv), r(dim, conv), r(dim), "silu"), {}, [1]


def check_kernels(device: torch.device) -> dict[str, Any]:
    """Each importable kernel against m1eval's PyTorch reference on the same fp32 inputs."""
    out: dict[str, Any] = {}
    for name, ok in kernels.available().items():
        if not ok or device.type != "cuda":
            out[name] = {"available": ok, "checked": False}
            continue
        gen = torch.Generator(device=device).manual_seed(0)
        args, kwargs, inplace = _kernel_inputs(name, device, gen)
        ref_args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
        ref_kwargs = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        got = kernels._load(name)(*args, **kwargs)
        want = kernels.REFERENCE[name](*ref_args, **ref_kwargs)
        pairs = list(zip(got, want)) if isinstance(got, tuple) else [(got, want)]
        pairs += [(args[i], ref_args[i]) for i in inplace]  # states updated in place must agree too
        errors = [float((g.float() - w.float()).abs().max() / w.float().abs().max().clamp_min(1e-30))
                  for g, w in pairs]  # fmt: skip
        out[name] = {"available": True, "checked": True, "max_rel_error": max(errors), "ok": max(errors) < 1e-3}
        log(f"kernel {name}: max relative error {max(errors):.2e} against the PyTorch reference")
    return out


def _stepped_logits(model: HybridForCausalLM, ids: torch.Tensor, mask: torch.Tensor, steps: int,
                    graph: bool) -> torch.Tensor:  # fmt: skip
    """Prefill all but the last ``steps`` tokens, then feed those one by one; logits of each step.

    ``graph``: through the engine's CUDA-graph step (whole-capacity attention), else eager.
    """
    from m1eval.hybrid.generation import _captured_step

    width = ids.shape[1] - steps
    cache = model.allocate_cache(ids.shape[0], ids.shape[1])
    model(ids[:, :width], mask[:, :width], cache=cache)
    step_fn = _captured_step(model, cache) if graph else None
    stepped = []
    for t in range(width, ids.shape[1]):
        slot = torch.tensor(t, device=ids.device)
        if step_fn is not None:
            stepped.append(step_fn(tokens=ids[:, t], positions=cache.positions, slot=slot).clone())
        else:
            stepped.append(model.decode_step(ids[:, t], cache.positions, slot, cache, kv_len=t + 1))
        cache.positions += 1
        cache.length += 1
    return torch.stack(stepped, 1)


def _token_agreement(a: list[list[int]], b: list[list[int]]) -> dict[str, Any]:
    first = [next((i for i, (x, y) in enumerate(zip(r, s)) if x != y), None) for r, s in zip(a, b)]
    return {"identical": a == b, "rows": len(a), "first_divergence": first}


# ---------------------------------------------------------------------------- speed


def _m1_run(model: HybridForCausalLM, prompts: list[list[int]], gen: int) -> tuple[float, float]:
    result = generate(model, prompts, max_new_tokens=gen, ignore_eos=True)
    return result.prefill_seconds, result.decode_seconds


@torch.no_grad()
def _llama_run(model: Any, ids: torch.Tensor, gen: int) -> float:
    device = ids.device
    sync(device)
    start = time.perf_counter()
    model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=gen, min_new_tokens=gen,
                   do_sample=False, cache_implementation="static", pad_token_id=0)  # fmt: skip
    sync(device)
    return time.perf_counter() - start


def _measure(kind: str, model: Any, batch: int, prompt_len: int, gen: int, warmup: int, repeats: int,
             vocab: int, device: torch.device) -> dict[str, Any]:  # fmt: skip
    """Decode tokens/s of one model at one batch: warm-ups, then the mean of ``repeats`` runs."""
    prompts = _prompts(vocab, [prompt_len] * batch, seed=batch)
    point: dict[str, Any] = {"batch": batch, "gen_len": gen, "status": "ok"}
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        if kind == "m1":
            for _ in range(warmup):
                _m1_run(model, prompts, min(gen, 32))
            runs = [_m1_run(model, prompts, gen) for _ in range(repeats)]
            prefill = sum(r[0] for r in runs) / repeats
            decode = sum(r[1] for r in runs) / repeats
        else:
            ids = torch.tensor(prompts, device=device)
            for _ in range(warmup):
                _llama_run(model, ids, min(gen, 32))
            prefill = sum(_llama_run(model, ids, 1) for _ in range(repeats)) / repeats
            decode = sum(_llama_run(model, ids, gen) for _ in range(repeats)) / repeats - prefill
        point.update(prefill_seconds=prefill, decode_seconds=decode,
                     decode_tokens_per_s=batch * (gen - 1) / max(decode, 1e-9),
                     total_tokens_per_s=batch * gen / max(prefill + decode, 1e-9))  # fmt: skip
    except torch.OutOfMemoryError as exc:
        point.update(status="oom", error=str(exc)[:300])
    except Exception as exc:  # noqa: BLE001 - one failed point must not end the sweep
        point.update(status="error", error=f"{type(exc).__name__}: {exc}"[:300])
    if device.type == "cuda":
        point["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.empty_cache()
    return point


def check_speed(shape: Shape, device: torch.device, batches: list[int], prompt_len: int, gen_len: int,
                warmup: int, repeats: int, deadline: Deadline, reserve_s: float) -> dict[str, Any]:  # fmt: skip
    """Both models at every batch; the generation length per batch fits what the deadline leaves."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    config = shape.hybrid()
    m1 = build_hybrid(config, random_hybrid_state(config, device, seed=0), device, dtype)
    llama = llama_model(shape, device, dtype)
    points: dict[str, list[dict[str, Any]]] = {"m1": [], "llama": []}
    notes = []
    for index, batch in enumerate(batches):
        # probe two short runs of each: the difference is the per-step cost at this batch, without the
        # fixed costs (graph capture, cache allocation) that a single short run would spread over its steps
        probe = {kind: [_measure(kind, model, batch, prompt_len, n, 0, 1, shape.vocab, device) for n in (8, 24)]
                 for kind, model in (("m1", m1), ("llama", llama))}  # fmt: skip
        failed = {kind: p for kind, runs in probe.items() for p in runs if p["status"] != "ok"}
        if failed:
            for kind, kind_points in points.items():
                why = failed.get(kind, {})
                kind_points.append({"batch": batch, "gen_len": None, "error": why.get("error"),
                                    "status": why.get("status", "not run: the other model failed")})  # fmt: skip
            what = ", ".join(f"{kind} {why['status']}" for kind, why in failed.items())
            notes.append(f"batch {batch}: {what} in the probe")
            continue
        step = max(max(runs[1]["decode_seconds"] - runs[0]["decode_seconds"], 1e-6) / 16 for runs in probe.values())
        share = max(deadline.left() - reserve_s, 0) / (len(batches) - index)
        gen = int(min(gen_len, share / 2 / ((repeats + 1) * step)))  # two models; repeats + the prefill-only runs
        gen = gen // 64 * 64 if gen >= 128 else max(gen, min(gen_len, 16))
        if share <= 0:
            notes.append(f"batch {batch}: skipped, no time left for it")
            for kind_points in points.values():
                kind_points.append({"batch": batch, "gen_len": None, "status": "skipped: time"})
            continue
        if gen < gen_len:
            notes.append(f"batch {batch}: generated {gen} tokens, not {gen_len} (time budget)")
        for kind, model in (("m1", m1), ("llama", llama)):
            point = _measure(kind, model, batch, prompt_len, gen, warmup, repeats, shape.vocab, device)
            points[kind].append(point)
            rate = point.get("decode_tokens_per_s")
            log(
                f"speed {kind} batch {batch} gen {gen}: "
                + (f"{rate:,.0f} tok/s" if rate else point["status"])
                + (f", peak {point['peak_memory_gib']:.1f} GiB" if "peak_memory_gib" in point else "")
            )
    ratios = []
    for a, b in zip(points["m1"], points["llama"]):
        if a.get("decode_tokens_per_s") and b.get("decode_tokens_per_s"):
            ratios.append({"batch": a["batch"], "gen_len": a["gen_len"],
                           "m1_over_llama": a["decode_tokens_per_s"] / b["decode_tokens_per_s"]})  # fmt: skip
    peaks = {kind: max((p for p in pts if p.get("decode_tokens_per_s")), key=lambda p: p["decode_tokens_per_s"],
                       default=None) for kind, pts in points.items()}  # fmt: skip
    del m1, llama
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "protocol": {"prompt_len": prompt_len, "gen_len_asked": gen_len, "warmup": warmup, "repeats": repeats,
                     "warmup_gen_len": 32, "greedy": True, "ignore_eos": True, "dtype": str(dtype),
                     "m1": "m1eval.hybrid.generate, kernels auto, CUDA graphs on",
                     "llama": "transformers generate, SDPA, static cache, no torch.compile"},
        "points": points, "ratios": ratios,
        "peak_batch": {k: (p["batch"] if p else None) for k, p in peaks.items()},
        "notes": notes,
    }  # fmt: skip


# ---------------------------------------------------------------------------- m1eval bench


def _write_models(shape: Shape, device: torch.device, root: Path) -> tuple[Path, Path]:
    """An M1 checkpoint folder and a Llama folder, both with a locally trained tokenizer (no hub)."""
    from safetensors.torch import save_file

    from m1eval.models.tiny import build_tokenizer

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    config = shape.hybrid()
    m1_dir, llama_dir = root / "m1-random", root / "llama-random"
    build_tokenizer(m1_dir)
    build_tokenizer(llama_dir)
    state = random_hybrid_state(config, device, seed=0)
    save_file({k: v.to(dtype).cpu().contiguous() for k, v in state.items()}, str(m1_dir / "model.safetensors"))
    del state
    llama_cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": shape.vocab,
        "hidden_size": shape.d_model, "intermediate_size": shape.intermediate, "num_hidden_layers": shape.n_layer,
        "num_attention_heads": shape.heads, "num_key_value_heads": shape.kv_heads,
        "head_dim": shape.d_model // shape.heads, "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "hidden_act": "silu",
        "max_position_embeddings": 8192, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 1,
        "pad_token_id": 0,
    }  # fmt: skip
    mamba_cfg = config.to_mamba_config()
    (m1_dir / "config.json").write_text(json.dumps(llama_cfg))
    (m1_dir / "mamba_config.json").write_text(json.dumps(mamba_cfg))
    llama = llama_model(shape, device, dtype)
    llama.save_pretrained(str(llama_dir))
    del llama
    return m1_dir, llama_dir


def check_bench(shape: Shape, device: torch.device, out: Path, batches: list[int], prompt_len: int,
                gen_len: int) -> dict[str, Any]:  # fmt: skip
    """``m1eval bench`` on both engines, in process, writing profiles to ``out/bench``."""
    from m1eval.cli.app import app
    from m1eval.throughput.profile import ThroughputProfile

    with tempfile.TemporaryDirectory(prefix="gpu_check_models_") as tmp:
        m1_dir, llama_dir = _write_models(shape, device, Path(tmp))
        dtype = "bfloat16" if device.type == "cuda" else "float32"
        args = ["bench", "-m", str(m1_dir), "-e", "m1", "-m", str(llama_dir), "-e", "hf",
                "--batch-sizes", ",".join(map(str, batches)), "--prompt-len", str(prompt_len),
                "--gen-len", str(gen_len), "--gen-lens", str(gen_len), "--length-batch", str(batches[0]),
                "--warmup", "1", "--repeats", "1", "--no-find-peak", "--no-figure", "--out", str(out / "bench"),
                "-o", f"m1:dtype={dtype}", "-o", f"hf:dtype={dtype}", "-o", f"device={device.type}"]  # fmt: skip
        started = time.perf_counter()
        try:
            app(args, standalone_mode=False)
        except SystemExit as exc:  # typer exits with the verb's code
            if exc.code:
                return {"ok": False, "error": f"m1eval bench exited with {exc.code}", "args": args}
        seconds = time.perf_counter() - started
    profiles = {}
    for path in sorted((out / "bench").glob("*.json")):
        profile = ThroughputProfile.load(path)
        peak = profile.peak
        profiles[path.name] = {"engine": profile.engine, "points": len(profile.measurements),
                               "peak_batch": peak.batch_size, "peak_tokens_per_s": peak.tokens_per_second}  # fmt: skip
    return {
        "ok": len(profiles) == 2,
        "seconds": seconds,
        "profiles": profiles,
        "command": "m1eval " + " ".join(args[:1] + [a if "/" not in a else Path(a).name for a in args[1:]]),
    }


# ---------------------------------------------------------------------------- report


def environment(device: torch.device) -> dict[str, Any]:
    import importlib.metadata as md

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": platform.python_version(),
        "torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device),
        "versions": {n: version(n) for n in ("triton", "transformers", "mamba-ssm", "causal-conv1d", "einops")},
        "kernels": kernels.available(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }  # fmt: skip
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, capability=f"{props.major}.{props.minor}"
        )
    return info


def draw(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speed = result.get("speed") or {}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind, label in (("m1", "M1 (m1eval engine)"), ("llama", "Llama-3.2-3B shape (transformers)")):
        pts = [p for p in speed.get("points", {}).get(kind, []) if p.get("decode_tokens_per_s")]
        ax.plot([p["batch"] for p in pts], [p["decode_tokens_per_s"] for p in pts], marker="o", label=label)
    for r in speed.get("ratios", []):
        ax.annotate(f"{r['m1_over_llama']:.2f}x", (r["batch"], 0), xycoords=("data", "axes fraction"),
                    xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("decode tokens/s")
    env = result["environment"]
    ax.set_title(f"{env.get('gpu', env['device'])}: decode throughput (M1/Llama ratio at the bottom)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shape, batch 8: the first device call (< 1 min)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: $OUT, else ./gpu_check_out)")
    parser.add_argument("--budget-s", type=float, default=420.0, help="stop starting work after this many seconds")
    parser.add_argument("--batches", default=None, help="speed batch sizes (default 1,8,32,128,256,512; quick: 8)")
    parser.add_argument("--gen-len", type=int, default=None, help="tokens to generate per row (default 4096)")
    parser.add_argument("--skip", default="", help="comma-separated stages to skip: correctness,speed,bench")
    parser.add_argument("--allow-cpu", action="store_true", help=argparse.SUPPRESS)  # CPU tests of the logic
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        print(NO_CUDA, file=sys.stderr)
        return 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = args.out or Path(os.environ.get("OUT") or "gpu_check_out")
    out.mkdir(parents=True, exist_ok=True)
    deadline = Deadline(args.budget_s)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    shape = QUICK if args.quick else M1_3B
    batches = [int(b) for b in args.batches.split(",")] if args.batches else ([8] if args.quick else
                                                                              [1, 8, 32, 128, 256, 512])  # fmt: skip
    gen_len = args.gen_len or (32 if args.quick else 4096)
    prompt_len = 32 if args.quick else 256
    result: dict[str, Any] = {"environment": environment(device), "shape": asdict(shape), "quick": args.quick}
    log(f"device {result['environment'].get('gpu', device)}; kernels {result['environment']['kernels']}")
    stages = [
        ("correctness", lambda: check_correctness(shape, device, [12, 9, 7, 5] if args.quick else [96, 80, 47, 20],
                                                  4 if args.quick else 8, 8 if args.quick else 64)),
        ("speed", lambda: check_speed(shape, device, batches, prompt_len, gen_len, 2, 3, deadline,
                                      reserve_s=15 if args.quick else 90)),
        ("bench", lambda: check_bench(shape, device, out, [batches[0]] if args.quick else [1, 64, 256],
                                      prompt_len, 16 if args.quick else 256)),
    ]  # fmt: skip
    for name, stage in stages:
        if name in skip:
            result[name] = {"skipped": "--skip"}
            continue
        if deadline.left() <= 0:
            result[name] = {"skipped": "time budget spent"}
            log(f"{name}: skipped, time budget spent")
            continue
        started = time.perf_counter()
        try:
            result[name] = stage()
        except Exception as exc:  # noqa: BLE001 - one failed stage must not lose the others' numbers
            result[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:1000]}
            log(f"{name} failed: {type(exc).__name__}: {exc}")
        result[name]["stage_seconds"] = time.perf_counter() - started
        (out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str))  # partial results survive
    draw(result, out / "gpu_check.png")
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str))
    log(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.png'}")
    failed = [name for name, _ in stages if isinstance(result.get(name), dict) and result[name].get("ok") is False]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
