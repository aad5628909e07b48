"""`m1eval run --engine m1` end to end on a tiny M1-style checkpoint."""

from __future__ import annotations

import importlib.util
import json

import pytest

from m1eval.models.tiny_hybrid import build_tiny_hybrid

if importlib.util.find_spec("m1eval.cli.run") is None:  # pragma: no cover
    pytest.skip("m1eval.cli.run (the `run` verb) does not exist yet", allow_module_level=True)


def test_m1_run_end_to_end(tmp_path, data_dir):
    from typer.testing import CliRunner

    from m1eval.cli.app import app

    model = build_tiny_hybrid(tmp_path / "tiny-m1", d_model=64)
    out = tmp_path / "results"
    args = ["run", "--model", str(model), "--engine", "m1", "--task", "aime25", "--limit", "2", "--k", "2",
            "--data-dir", str(data_dir), "--out", str(out), "--max-tokens", "16", "--no-grade"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    samples = list(out.rglob("samples.jsonl"))
    assert len(samples) == 1
    rows = [json.loads(line) for line in samples[0].read_text().splitlines() if line.strip()]
    assert len(rows) == 4
    assert {(r["problem_id"], r["sample_index"]) for r in rows} == {(p, i) for p in {r["problem_id"] for r in rows}
                                                                    for i in (0, 1)}  # fmt: skip
    assert all(0 < r["completion_tokens"] <= 16 and r["finish_reason"] in ("stop", "length") for r in rows)
    assert len({r["seed"] for r in rows}) == 4
    # a second run resumes: nothing left to generate, nothing duplicated
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len(samples[0].read_text().splitlines()) == 4
