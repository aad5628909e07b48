"""Throughput profiles: what one model on one engine and machine can generate per second.

A profile is written once by ``m1eval bench`` (the only step that needs the accelerator)
and read by every later analysis, so it keeps everything needed to judge and reproduce a
number: model, engine and its options, hardware, library versions, the bench settings
and every measurement with its repeats. The time-budget analysis turns token counts into
seconds through ``ThroughputProfile.throughput_at`` and ``seconds_for_length``. The
hardware and library facts a profile records come from ``m1eval.rundir.runinfo``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROFILE_VERSION = 1
SWEEPS = ("batch", "length")
STATUSES = ("ok", "oom", "error")


class ProfileError(ValueError):
    """A profile file cannot be read or cannot answer the question asked of it."""


@dataclass
class Measurement:
    """One (batch size, generation length) point: the mean of ``repeats`` after warm-ups."""

    sweep: str
    batch_size: int
    prompt_len: int
    gen_len: int
    status: str = "ok"
    wall_seconds: float | None = None
    repeat_seconds: list[float] = field(default_factory=list)
    generated_tokens: int | None = None
    prefill_seconds: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.wall_seconds is not None and self.wall_seconds > 0

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens (all rows) per wall second; NaN for failed points."""
        if not self.ok or not self.generated_tokens or self.wall_seconds is None:  # ok implies a wall time
            return float("nan")
        return self.generated_tokens / self.wall_seconds

    @property
    def ms_per_token(self) -> float:
        """Decoding latency seen by one sequence: batch wall time over tokens per row."""
        if not self.ok or self.wall_seconds is None:  # ok implies a wall time
            return float("nan")
        return 1000.0 * self.wall_seconds / self.gen_len

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens_per_second"] = None if math.isnan(self.tokens_per_second) else self.tokens_per_second
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "measurement") -> Measurement:
        data = {k: v for k, v in data.items() if k != "tokens_per_second"}  # derived, recomputed
        try:
            m = cls(**data)
        except TypeError as exc:
            raise ProfileError(f"{where}: {exc}") from None
        if m.sweep not in SWEEPS:
            raise ProfileError(f"{where}: sweep {m.sweep!r} is not one of {SWEEPS}")
        if m.status not in STATUSES:
            raise ProfileError(f"{where}: status {m.status!r} is not one of {STATUSES}")
        if m.batch_size < 1 or m.gen_len < 1:
            raise ProfileError(f"{where}: batch_size and gen_len must be >= 1")
        return m


@dataclass
class ThroughputProfile:
    """Every measurement of one model on one engine and machine."""

    model: str
    engine: str
    display_name: str | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    version: int = PROFILE_VERSION

    # ------------------------------------------------------------------ views

    @property
    def name(self) -> str:
        return self.display_name or Path(self.model.rstrip("/")).name or self.model

    def points(self, sweep: str) -> list[Measurement]:
        """Successful points of one sweep, sorted by their varying axis."""
        key = (lambda m: m.batch_size) if sweep == "batch" else (lambda m: m.gen_len)
        return sorted((m for m in self.measurements if m.sweep == sweep and m.ok), key=key)

    @property
    def peak(self) -> Measurement:
        points = self.points("batch")
        if not points:
            raise ProfileError(f"profile of {self.name}: no successful batch-size measurement")
        return max(points, key=lambda m: m.tokens_per_second)

    @property
    def oom_batch_size(self) -> int | None:
        """The smallest batch size that ran out of memory, if any."""
        sizes = [m.batch_size for m in self.measurements if m.sweep == "batch" and m.status == "oom"]
        return min(sizes) if sizes else None

    # ------------------------------------------------------------------ interpolation

    def throughput_at(self, batch_size: float) -> float:
        """Tokens/s at ``batch_size``: linear in log2(batch) between measured points.

        Outside the measured range the nearest point is used rather than extrapolating:
        throughput saturates, so a straight-line extrapolation would invent speed.
        """
        points = self.points("batch")
        if not points:
            raise ProfileError(f"profile of {self.name}: no successful batch-size measurement")
        if batch_size <= 0:
            raise ProfileError(f"batch size must be positive, got {batch_size}")
        xs = [math.log2(m.batch_size) for m in points]
        ys = [m.tokens_per_second for m in points]
        return _interp(math.log2(batch_size), xs, ys)

    def seconds_for_length(self, gen_len: float) -> float:
        """Wall seconds to decode ``gen_len`` tokens for every row of the length-sweep batch.

        Linear between measured lengths; beyond the longest, the last segment's slope
        continues, but never below the proportional scale-up of the longest point (decode
        cost per token only grows with length); below the shortest, time scales down
        proportionally from it.
        """
        points = self.points("length")
        if not points:
            raise ProfileError(f"profile of {self.name}: no generation-length sweep (measure one with gen_lens)")
        if gen_len <= 0:
            return 0.0
        # points() keeps ok ones only, which all have a wall time: the filter only narrows the type
        measured = [(float(m.gen_len), float(m.wall_seconds)) for m in points if m.wall_seconds is not None]
        xs = [x for x, _ in measured]
        ys = [y for _, y in measured]
        if gen_len <= xs[0]:
            return ys[0] * gen_len / xs[0]
        if gen_len >= xs[-1] and len(xs) > 1:
            # Per-token cost never falls with length, so the proportional scale-up is a floor
            # (it also guards against a noisy last segment with a negative slope).
            slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
            return max(ys[-1] + slope * (gen_len - xs[-1]), ys[-1] * gen_len / xs[-1])
        if gen_len >= xs[-1]:
            return ys[-1] * gen_len / xs[-1]
        return _interp(gen_len, xs, ys)

    def length_factor(self, gen_len: float) -> float:
        """Throughput at ``gen_len`` relative to the batch sweep's length, from the length sweep.

        The batch sweep is measured at one generation length; real completions are longer
        or shorter, and a transformer's decode slows as its KV cache grows while a
        recurrent layer's does not. This factor carries that difference over to any batch
        size, assuming the length effect is the same at every batch (a separable model).
        """
        batch_points = self.points("batch")
        if not batch_points:
            raise ProfileError(f"profile of {self.name}: no successful batch-size measurement")
        reference = batch_points[0].gen_len

        def rate(length: float) -> float:
            return length / self.seconds_for_length(length)

        return rate(gen_len) / rate(reference)

    @property
    def length_batch_size(self) -> int | None:
        points = self.points("length")
        return points[0].batch_size if points else None

    # ------------------------------------------------------------------ files

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["measurements"] = [m.to_dict() for m in self.measurements]
        try:
            peak = self.peak
            out["peak"] = {"batch_size": peak.batch_size, "tokens_per_second": peak.tokens_per_second}
        except ProfileError:
            out["peak"] = None
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Atomic write, so an interrupted bench never leaves half a profile."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ThroughputProfile:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProfileError(f"{path}: no such profile (write one with `m1eval bench`)") from None
        except json.JSONDecodeError as exc:
            raise ProfileError(f"{path}: invalid JSON: {exc}") from None
        if not isinstance(data, dict) or "model" not in data or "measurements" not in data:
            raise ProfileError(f"{path}: not a throughput profile (needs 'model' and 'measurements')")
        if data.get("version", PROFILE_VERSION) > PROFILE_VERSION:
            raise ProfileError(f"{path}: profile version {data['version']} is newer than this m1eval reads")
        data.pop("peak", None)
        rows = data.pop("measurements")
        if not isinstance(rows, list):
            raise ProfileError(f"{path}: 'measurements' must be a list")
        measurements = [Measurement.from_dict(r, where=f"{path}: measurement {i}") for i, r in enumerate(rows)]
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ProfileError(f"{path}: unknown field(s) {sorted(unknown)}")
        return cls(measurements=measurements, **data)


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    """Piecewise-linear interpolation, clamped to the end values."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1
    return ys[-1]  # unreachable for sorted xs
