"""How compared runs differ in what their numbers depend on, beyond the model.

The comparison the tool exists for, M1 (24,576 AIME tokens, a space join) against an R1
distill (32,768, a newline join), differs in its protocol by design; a comparison of two runs
that differ by accident (another token budget, another extraction policy, an older grader,
unpinned rows, a clock measured on another machine) must say so just as plainly. Every
comparison (``m1eval report``, ``m1eval budget``, the figures of ``m1eval plot``) lists
``run_differences`` above itself, in its CSV/JSON and under its figures.

What is compared, from each run's manifest (a value a run does not record reads
"not recorded"; runs that all lack it do not differ):

- max new tokens (``sampling.max_tokens``) and the sampling (temperature, top_p, top_k);
- the prompt protocol: join, instruction, chat template (its hash), EOS policy (``prompt``);
- the extraction policy and the grader version of the grades (``stages.grade``);
- the task pin: the pinned hash, or the rows' own hash for unpinned rows (``task``);
- the hardware the run was generated on (``host``); for a time budget instead the hardware
  each clock was measured on (``clock_difference``): a ranking by seconds measured on two
  machines compares the machines as much as the models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from m1eval.grading.extract import ALIASES, PolicyError, canonical_policy
from m1eval.rundir.rundata import RunData

NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Difference:
    """One setting in which the compared runs differ: its key, its name, each run's value."""

    key: str  # "max_tokens", "join", ... (stable: CSV rows and JSON use it)
    what: str  # "max new tokens"
    values: dict[str, str]  # run label -> the value as a reader sees it

    def text(self) -> str:
        """'max new tokens: 320 (a, b), 512 (c)': the runs grouped by value, in input order."""
        groups: dict[str, list[str]] = {}
        for label, value in self.values.items():
            groups.setdefault(value, []).append(label)
        return f"{self.what}: " + "; ".join(f"{value} ({', '.join(labels)})" for value, labels in groups.items())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text()}


def _get(manifest: dict[str, Any], *path: str) -> Any:
    value: Any = manifest
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _max_tokens(m: dict[str, Any]) -> str | None:
    value = _get(m, "sampling", "max_tokens")
    value = value if value is not None else _get(m, "prompt", "max_tokens")
    return f"{int(value):,}" if isinstance(value, (int, float)) else None


def _sampling(m: dict[str, Any]) -> str | None:
    sampling = _get(m, "sampling")
    if not isinstance(sampling, dict) or sampling.get("temperature") is None:
        return None
    text = f"T {float(sampling['temperature']):g}, top_p {float(sampling.get('top_p', 1.0)):g}"
    top_k = sampling.get("top_k")
    if isinstance(top_k, int) and top_k > 0:
        text += f", top_k {top_k}"
    return text


def _text(value: Any, limit: int = 60) -> str | None:
    if value is None:
        return None
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _chat_template(m: dict[str, Any]) -> str | None:
    prompt = _get(m, "prompt")
    if not isinstance(prompt, dict):
        return None
    if prompt.get("chat_template") is False:
        return "none (raw text)"
    found = prompt.get("template_hash")
    return f"hash {found}" if found else None


def policy_name(policy: str | None) -> str | None:
    """'lenient' for the rule list it stands for, else the rule list; None when not recorded."""
    if policy is None:
        return None
    try:
        rules = canonical_policy(policy)
    except PolicyError:
        return str(policy)
    names = {canonical_policy(alias): alias for alias in ALIASES}
    return names.get(rules, rules)


def _extraction(m: dict[str, Any]) -> str | None:
    stage = _get(m, "stages", "grade")
    if not isinstance(stage, dict) or stage.get("state") is None:
        return None
    # graded before policies were recorded (grader < 1.3): the only policy there was, boxed
    return policy_name(stage.get("extraction") or "boxed")


def _task_pin(m: dict[str, Any]) -> str | None:
    task = _get(m, "task")
    if not isinstance(task, dict):
        return None
    if task.get("unpinned"):
        return f"unpinned rows (sha256 {str(task.get('content_hash'))[:12]}…)"
    pin = task.get("pinned_hash") or task.get("content_hash")
    if not pin or pin == "synthetic":
        return None
    return f"{task.get('name', '?')} pin {str(pin)[:12]}…"


def host_hardware(host: Any) -> str | None:
    """A run's generation hardware from its manifest's ``host``: the accelerator, else the CPU."""
    if not isinstance(host, dict):
        return None
    accelerator = host.get("accelerator")
    if accelerator and accelerator != "cpu":
        return str(accelerator)
    cpu = host.get("cpu")
    return f"CPU {cpu}" if cpu else None


def profile_hardware(hardware: Any) -> str | None:
    """A throughput profile's hardware (``m1eval.rundir.runinfo.hardware_info``) in the same words."""
    if not isinstance(hardware, dict) or not hardware:
        return None
    gpus = hardware.get("gpus")
    if isinstance(gpus, list) and gpus:
        names = sorted({str(g.get("name")) for g in gpus if isinstance(g, dict)})
        return f"{len(gpus)} x {' + '.join(names)}"
    cpu = hardware.get("cpu")
    return f"CPU {cpu}" if cpu else None


# key, what a reader calls it, how to read it from a manifest
FIELDS: tuple[tuple[str, str, Callable[[dict[str, Any]], str | None]], ...] = (
    ("max_tokens", "max new tokens", _max_tokens),
    ("sampling", "sampling", _sampling),
    ("join", "prompt join", lambda m: _get(m, "prompt", "join")),
    ("instruction", "prompt instruction", lambda m: _text(_get(m, "prompt", "suffix"))),
    ("chat_template", "chat template", _chat_template),
    ("eos", "EOS policy", lambda m: _get(m, "prompt", "eos")),
    ("extraction", "extraction policy", _extraction),
    ("grader", "grader version", lambda m: _get(m, "stages", "grade", "grader_version")),
    ("task_pin", "task rows", _task_pin),
    ("hardware", "generated on", lambda m: host_hardware(_get(m, "host"))),
)
KEYS = tuple(key for key, _, _ in FIELDS)


def differing(key: str, what: str, values: dict[str, str | None]) -> Difference | None:
    """A ``Difference`` when the values are not all the same (missing ones read 'not recorded')."""
    if all(v is None for v in values.values()):
        return None
    shown = {label: NOT_RECORDED if v is None else str(v) for label, v in values.items()}
    return Difference(key, what, shown) if len(set(shown.values())) > 1 else None


def run_differences(
    runs: Sequence[RunData], labels: Sequence[str] | None = None, *, skip: Sequence[str] = ()
) -> list[Difference]:
    """Every setting of ``FIELDS`` (but ``skip``) in which the runs differ, in that order."""
    if len(runs) < 2:
        return []
    labels = list(labels) if labels is not None else [run.label for run in runs]
    out = []
    for key, what, read in FIELDS:
        if key in skip:
            continue
        found = differing(key, what, {label: read(run.manifest) for run, label in zip(runs, labels)})
        if found is not None:
            out.append(found)
    return out


def clock_difference(hardware: dict[str, str | None]) -> Difference | None:
    """The clocks' hardware (label -> what its seconds were measured on) when it is not one machine."""
    return differing("clock_hardware", "clock hardware", hardware)


def difference_line(difference: Difference) -> str:
    """The difference as a warning above a comparison or a note under a figure."""
    if difference.key == "clock_hardware":
        return f"the runs are ranked by seconds measured on different hardware: {difference.text().split(': ', 1)[1]}"
    return f"the compared runs differ in {difference.text()}"


def difference_lines(differences: Sequence[Difference]) -> list[str]:
    return [difference_line(d) for d in differences]
