"""What a sample costs in seconds: a clock from a throughput profile or from the run's own batches.

A budget verdict is only as good as its clock, so the choices are explicit: a profile at a
stated batch size (with warnings when the run was not measured near it) or the measured
batches of the run itself, and the profile of a run is matched by model name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from m1eval.analysis.comparable import host_hardware, profile_hardware
from m1eval.analysis.curves import CurveError
from m1eval.models.presets import canonical
from m1eval.rundir.rundata import RunData
from m1eval.throughput.profile import ProfileError, ThroughputProfile


class BudgetError(CurveError):
    """The budget analysis cannot answer as asked; the message names the run or argument.

    A ``CurveError`` (a curve it needs cannot be computed) is its base: catch that to catch both.
    """


@dataclass(frozen=True)
class Clock:
    """Turns generated tokens into wall seconds for one model at one operating point."""

    tokens_per_second: float
    source: str
    batch_size: float | None = None
    warnings: tuple[str, ...] = ()  # e.g. a batch size the profile could not run
    hardware: str | None = None  # what the rate was measured on (m1eval.analysis.comparable), if recorded

    def seconds(self, tokens: float) -> float:
        return float(tokens) / self.tokens_per_second


def clock_from_profile(
    profile: ThroughputProfile, batch_size: float | None = None, gen_len: float | None = None
) -> Clock:
    """Throughput at ``batch_size`` (default: the profile's peak batch).

    With ``gen_len`` (the run's mean completion length) the rate is rescaled by the
    profile's generation-length sweep (``ThroughputProfile.length_factor``), so long
    reasoning chains are priced at long-context speed rather than at the bench's length.
    """
    batch = batch_size if batch_size is not None else profile.peak.batch_size
    tps = profile.throughput_at(batch)
    warnings = batch_size_warnings(profile, batch) if batch_size is not None else []
    source = f"profile {profile.name} ({profile.engine}) at batch {batch:g}"
    if warnings:
        source += " (clamped)"
    if gen_len is not None:
        tps *= profile.length_factor(gen_len)
        source += f", {gen_len:,.0f}-token generations"
    return Clock(tps, source, batch, tuple(warnings), profile_hardware(profile.hardware))


def batch_size_warnings(profile: ThroughputProfile, batch_size: float) -> list[str]:
    """Why the throughput at ``batch_size`` is not a measurement: out of memory, or outside the sweep.

    ``ThroughputProfile.throughput_at`` holds the nearest measured rate outside the measured
    range; a batch at or above one that ran out of memory could not have run at all.
    """
    points = profile.points("batch")
    if not points:
        return []
    largest, smallest = points[-1], points[0]
    oom = profile.oom_batch_size
    asked = f"batch size {batch_size:g}"
    if oom is not None and batch_size >= oom:
        message = (
            f"{asked} is at or above batch {oom}, which ran out of memory in profile {profile.name}; priced at "
            f"the largest batch that ran, {largest.batch_size} ({largest.tokens_per_second:,.1f} tok/s)"
        )
    elif batch_size > largest.batch_size:
        message = (
            f"{asked} is above the largest batch profile {profile.name} measured ({largest.batch_size}); "
            f"priced at that batch's {largest.tokens_per_second:,.1f} tok/s, not extrapolated"
        )
    elif batch_size < smallest.batch_size:
        message = (
            f"{asked} is below the smallest batch profile {profile.name} measured ({smallest.batch_size}); "
            f"priced at that batch's {smallest.tokens_per_second:,.1f} tok/s"
        )
    else:
        return []
    return [message]


def clock_from_batches(run: RunData) -> Clock:
    """The run's own measured rate: all generated tokens over all batch wall seconds."""
    batches = run.batches
    if batches is None or len(batches) == 0:
        raise BudgetError(f"{run.path}: no batches.jsonl timings; give a throughput profile for this model")
    wall = float(batches["wall_seconds"].sum())
    tokens = float(batches["generated_tokens"].sum())
    if wall <= 0 or tokens <= 0:
        raise BudgetError(f"{run.path}: batches.jsonl has no time or no tokens ({wall} s, {tokens:.0f} tokens)")
    mean_batch = float(batches["batch_size"].mean())
    return Clock(
        tokens / wall,
        f"measured batches of {run.path.name}",
        mean_batch,
        hardware=host_hardware(run.manifest.get("host")),
    )


def match_profile(run: RunData, profiles: Sequence[ThroughputProfile]) -> ThroughputProfile | None:
    """The profile of the run's model: same display name, preset, hub id or folder."""
    model = run.manifest.get("model")
    names = {canonical(run.model)}
    if isinstance(model, dict):
        names |= {canonical(str(v)) for k, v in model.items() if k in ("name", "path", "preset") and v}
    for prof in profiles:
        if {canonical(prof.name), canonical(prof.model)} & names:
            return prof
    return None


def clock_for(
    run: RunData,
    profiles: Sequence[ThroughputProfile],
    *,
    batch_size: float | None = None,
    source: str = "auto",
    length_aware: bool = False,
    tokens_per_sample: float | None = None,
) -> Clock:
    """``source``: 'profile' (must match), 'batches' (the run's own timings) or 'auto' (profile if any).

    ``length_aware`` prices the run's mean completion length (or ``tokens_per_sample``,
    when every sample is priced at a fixed length) through the profile's length sweep
    (see ``clock_from_profile``).
    """
    if source not in ("auto", "profile", "batches"):
        raise BudgetError(f"clock must be auto, profile or batches, got {source!r}")
    prof = match_profile(run, profiles) if source != "batches" else None
    if prof is not None:
        gen_len = None
        if length_aware:
            gen_len = (
                float(tokens_per_sample)
                if tokens_per_sample is not None
                else float(run.frame["completion_tokens"].mean())
            )
        try:
            return clock_from_profile(prof, batch_size, gen_len)
        except ProfileError as exc:
            raise BudgetError(f"{run.path}: {exc}") from None
    if source == "profile":
        have = ", ".join(p.name for p in profiles) or "none given"
        raise BudgetError(f"{run.path}: no throughput profile matches model {run.model!r} (profiles: {have})")
    clock = clock_from_batches(run)
    if batch_size is not None:
        note = (
            f"batch size {batch_size:g} does not apply to {run.model}: no profile prices it, so its own measured "
            f"batches do (mean batch {clock.batch_size:g})"
        )
        clock = Clock(clock.tokens_per_second, clock.source, clock.batch_size, (note,), clock.hardware)
    return clock
