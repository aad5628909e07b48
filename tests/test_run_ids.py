"""Run ids name their folders without losing what tells them apart (issue 22.7).

Before: the folder name kept only ASCII letters and digits, so two ids that differ in a Greek
letter (beta-run and gamma-run, in Greek) both became ``run`` and the second extended the first's folder. Unicode letters,
marks and digits are now kept (NFC), and an id whose folder holds a run of another id is refused.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from helpers import instant_fixtures
from helpers.instant_engine import ENGINE
from helpers.run_helpers import raw_sample_lines
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.pipeline.runner import RunConfig, RunError, generate, plan_run
from m1eval.rundir.store import StoreError, run_folder_name, safe_name

model, instant = instant_fixtures.model, instant_fixtures.instant  # the shared fixtures (instant is autouse)


def _config(model, data_dir, out, run_id: str, k: int = 2) -> RunConfig:
    return instant_fixtures.instant_config(model, data_dir, out, k=k, limit=2, run_id=run_id)


def _runs(out: Path) -> dict[str, str]:
    """folder name -> the run id its manifest records"""
    return {p.parent.name: json.loads(p.read_text())["run_id"] for p in out.rglob("manifest.json")}


def _folder_state(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"
    }


def test_ids_in_other_scripts_get_folders_of_their_own(model, data_dir, tmp_path):
    for run_id in ("β-run", "γ-run", "run", "हिन्दी-१"):
        outcome = generate(plan_run(_config(model, data_dir, tmp_path, run_id)))
        assert outcome.state == "done" and outcome.generated == 4, (run_id, outcome.message)
        assert outcome.path.name == run_id
    assert _runs(tmp_path) == {"β-run": "β-run", "γ-run": "γ-run", "run": "run", "हिन्दी-१": "हिन्दी-१"}


def test_one_id_typed_composed_or_decomposed_is_one_run(model, data_dir, tmp_path):
    composed, decomposed = "café", unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    assert generate(plan_run(_config(model, data_dir, tmp_path, decomposed))).generated == 4
    grown = generate(plan_run(_config(model, data_dir, tmp_path, composed, k=3)))
    assert grown.state == "done" and grown.generated == 2  # resumed, not a second folder
    assert _runs(tmp_path) == {composed: composed}


def test_two_ids_with_one_folder_name_are_refused_not_merged(model, data_dir, tmp_path):
    assert run_folder_name("my run") == run_folder_name("my--run") == "my--run"
    assert generate(plan_run(_config(model, data_dir, tmp_path, "my run"))).state == "done"
    before = _folder_state(tmp_path)
    with pytest.raises(RunError) as caught:
        generate(plan_run(_config(model, data_dir, tmp_path, "my--run", k=3)))
    message = str(caught.value)
    assert "holds run 'my run'" in message and "run id 'my--run' has the same folder name" in message
    assert "--run-id" not in message  # a library message names no CLI flag
    assert _folder_state(tmp_path) == before
    assert len(raw_sample_lines(next(tmp_path.rglob("my--run")))) == 4


def test_the_cli_refuses_the_second_id_in_one_line(model, data_dir, tmp_path):
    base = [
        "run",
        *("--model", str(model), "--engine", ENGINE, "--task", "aime25", "--k", "1", "--limit", "1"),
        *("--max-tokens", "16", "--data-dir", str(data_dir), "--out", str(tmp_path), "--no-grade"),
    ]
    assert CliRunner().invoke(app, [*base, "--run-id", "a/b"]).exit_code == 0
    result = CliRunner().invoke(app, [*base, "--run-id", "a b"], env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "holds run 'a/b'" in line and "run id 'a b'" in line


def test_an_id_without_letters_or_digits_is_refused(model, data_dir, tmp_path):
    for run_id in ("🚀", "---", "  /  "):
        with pytest.raises(RunError, match="has no letter or digit to name its folder with"):
            plan_run(_config(model, data_dir, tmp_path, run_id))
    with pytest.raises(RunError, match="too long for a folder name"):
        plan_run(_config(model, data_dir, tmp_path, "β" * 150))
    assert not any(tmp_path.iterdir())
    with pytest.raises(StoreError):
        run_folder_name("🎉")


def test_ascii_ids_keep_their_folder_names():
    """Every folder an ASCII id got before is the one it gets now (so existing runs resume)."""
    for run_id in ("t0.6-s0", "vllm-t0.6-p0.95-max32768-seed0-ab12cd34", "my run", "../../etc", "a_b+c", " x/ "):
        assert run_folder_name(run_id) == safe_name(run_id), run_id
