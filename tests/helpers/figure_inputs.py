"""Throughput profiles with known numbers for the figure tests (no engine is timed)."""

from __future__ import annotations

from m1eval.throughput.profile import Measurement, ThroughputProfile


def fake_profile(name: str, per_seq: float, cap: int, oom: int | None = None) -> ThroughputProfile:
    """Throughput ``per_seq`` x batch up to ``cap`` sequences, out of memory from batch ``oom`` on;
    prompt 16, generation 64; a length sweep 16, 32, 64 at batch 4."""
    ms = []
    for b in (1, 4, 16, 64):
        if oom is not None and b >= oom:
            ms.append(Measurement("batch", b, 16, 64, status="oom", error="out of memory"))
            break
        tps = per_seq * min(b, cap)
        wall = b * 64 / tps
        ms.append(
            Measurement(
                "batch",
                b,
                16,
                64,
                wall_seconds=wall,
                repeat_seconds=[wall * 0.95, wall * 1.05],
                generated_tokens=b * 64,
            )
        )
    for g in (16, 32, 64):
        wall = 4 * g / (per_seq * 4) * (1 + g / 256)
        ms.append(Measurement("length", 4, 16, g, wall_seconds=wall, generated_tokens=4 * g))
    return ThroughputProfile(
        model=f"org/{name}",
        engine="fake",
        display_name=name,
        measurements=ms,
        settings={"prompt_len": 16, "gen_len": 64},
    )
