"""Engine options (``-o key=value``), each declared once, where its engine declares it.

A declaration says more than a type: whether the option changes the samples (then it is
part of the run id, so two runs that differ in it never share a folder) and whether it is
secret (then it never reaches a manifest, a log or a replica's report). The run identity,
the redaction and the ``m1eval engines`` table are all built from these declarations, so
an engine added with the ``docs/extending.md`` recipe gets them right by declaring its
options, and nothing else keeps a list of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from m1eval.engines.base import EngineError


class OptionError(EngineError):
    """An engine option is unknown or has a value of the wrong type; the message names both.

    ``option`` names the option at fault, when there is one, so a command line can add the flag
    that sets it (the library's messages name options, never flags).
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class OptionSpec:
    """One engine option: the type (and bounds) it accepts, what it does, and what it affects.

    ``kind`` is one of int, float, bool, str, list (of strings, or one comma-separated
    string), dict. ``minimum`` bounds numbers, ``above`` makes that bound strict.
    ``changes_samples``: a different value can give different texts for the same seeds
    (weights dtype, kernels, the model behind an endpoint); such options enter the run id.
    Options that change only speed or memory (batch sizes, parallelism, memory shares,
    endpoints) do not, so a run can resume with other resources. ``secret``: never stored.
    """

    kind: str
    minimum: float | None = None
    above: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False
    changes_samples: bool = False
    secret: bool = False
    help: str = ""

    def problem(self, value: Any) -> str | None:
        """None when ``value`` fits, else what was expected (for a one-line error)."""
        if value is None:
            return None if self.nullable else f"expected {self.describe()}, got null"
        if self.kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind == "str":
            ok = isinstance(value, str) and (not self.choices or value in self.choices)
        elif self.kind == "list":
            ok = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        elif self.kind == "dict":
            ok = isinstance(value, dict)
        else:  # pragma: no cover - a spec typo
            raise ValueError(f"unknown option kind {self.kind!r}")
        if ok and self.minimum is not None and (value <= self.minimum if self.above else value < self.minimum):
            ok = False
        return None if ok else f"expected {self.describe()}, got {value!r}"

    def describe(self) -> str:
        if self.choices:
            return "one of " + "|".join(self.choices)
        text = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "str": "a string",
            "list": "a list of strings",
            "dict": "a JSON object",
        }[self.kind]
        if self.minimum is not None:
            text += f" {'>' if self.above else '>='} {self.minimum:g}"
        return text


OptionSpecs = Mapping[str, OptionSpec]


def checked_options(engine: str, options: Mapping[str, Any] | None, specs: OptionSpecs) -> dict[str, Any]:
    """A copy of ``options``; an unknown key or a value of the wrong type is an error naming both."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(specs))
    if unknown:
        raise OptionError(f"{engine}: unknown engine option(s) {unknown}; known: {', '.join(specs)}")
    for key, value in options.items():
        problem = specs[key].problem(value)
        if problem is not None:
            raise OptionError(f"{engine}: engine option {key}: {problem}")
    return options


def sample_changing(options: Mapping[str, Any], specs: OptionSpecs) -> dict[str, Any]:
    """The options that enter the run id: those declared ``changes_samples``, sorted by name."""
    return {key: options[key] for key in sorted(options) if key in specs and specs[key].changes_samples}


def redacted(options: Mapping[str, Any], specs: OptionSpecs) -> dict[str, Any]:
    """``options`` without the secret ones: what a manifest, a log or a replica report may show."""
    return {key: value for key, value in options.items() if not (key in specs and specs[key].secret)}
