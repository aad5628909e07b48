"""`m1eval run` end to end through the real hf and vllm engines (the openai one is in test_engines_openai)."""

from __future__ import annotations

import json

import pytest
from helpers.run_helpers import check_graded, check_run_folder, only_run_dir, raw_sample_lines, run_cli, tiny_model

pytestmark = pytest.mark.slow

ENGINE_ARGS = {
    "hf": ["-o", "batch_size=8"],
    "vllm": [
        "--max-model-len",
        "2048",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--gpu-memory-utilization",
        "0.2",
        "--max-num-seqs",
        "16",
    ],
}


@pytest.mark.parametrize("engine", ["hf", "vllm"])
def test_run_generates_grades_and_reports(engine, tmp_path_factory, data_dir, tmp_path):
    model = tiny_model(tmp_path_factory)
    command = ["run", "--model", str(model), "--engine", engine, "--task", "aime25", "--limit", "3", "--k", "4"]
    command += ["--max-tokens", "32", "--data-dir", str(data_dir), "--out", str(tmp_path), *ENGINE_ARGS[engine]]
    result = run_cli(*command)
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir = only_run_dir(tmp_path)
    assert run_dir.relative_to(tmp_path).parts[:2] == ("aime25", model.name)
    rows = check_run_folder(run_dir, problems=3, k=4, max_tokens=32, engine=engine)
    check_graded(run_dir, result.stdout, 12)
    assert "pass@" in result.stdout and model.name in result.stdout
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["model"] == {"name": model.name, "path": str(model), "preset": None, "revision": None}
    assert manifest["task"]["name"] == "aime25" and manifest["task"]["limit"] == 3
    assert manifest["versions"]["torch"] and manifest["versions"]["transformers"]
    if engine == "vllm":
        assert manifest["engine"]["options"]["max_model_len"] == 2048
        assert all(r["timings"] and "decode_seconds" in r["timings"] for r in rows)

    # the same command again has nothing to do and keeps every sample
    again = run_cli(*command, "--no-grade")
    assert again.returncode == 0, again.stderr[-3000:]
    assert raw_sample_lines(run_dir) == rows
