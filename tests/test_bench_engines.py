"""`m1eval bench` end to end on CPU with real engines: a tiny transformer (hf) and a tiny hybrid (m1).

Nothing is mocked: random-weight models are built in a temp folder, the CLI loads them
through the engine registry, times greedy decoding, writes one profile per model and
the throughput figure.
"""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import pytest
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.models.tiny import build_tiny_llama
from m1eval.models.tiny_hybrid import build_tiny_hybrid
from m1eval.throughput.profile import ThroughputProfile

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-models")
    return build_tiny_llama(root / "tiny-llama"), build_tiny_hybrid(root / "tiny-m1")


@pytest.fixture(scope="module")
def bench_out(models, tmp_path_factory):
    llama, hybrid = models
    out = tmp_path_factory.mktemp("bench-out")
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "-m",
            str(llama),
            "-e",
            "hf",
            "-m",
            str(hybrid),
            "-e",
            "m1",
            "--batch-sizes",
            "1,2",
            "--prompt-len",
            "8",
            "--gen-len",
            "8",
            "--gen-lens",
            "4,8",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--max-batch",
            "4",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out, " ".join(result.output.split())


@pytest.mark.parametrize("name,engine", [("tiny-llama", "hf"), ("tiny-m1", "m1")])
def test_profile_written_with_every_measurement(bench_out, name, engine):
    out, _ = bench_out
    path = out / f"{name}-{engine}.json"
    data = json.loads(path.read_text())
    assert data["engine"] == engine and data["display_name"] == name
    assert data["hardware"]["accelerator"] == "cpu" and data["versions"]["torch"]
    assert data["settings"]["warmup"] == 1 and data["settings"]["repeats"] == 2 and data["settings"]["prompt_len"] == 8
    prof = ThroughputProfile.load(path)
    batch = prof.points("batch")
    assert [m.batch_size for m in batch][:2] == [1, 2]
    assert all(m.status == "ok" for m in prof.measurements), [m.error for m in prof.measurements]
    for m in prof.measurements:
        assert len(m.repeat_seconds) == 2 and m.generated_tokens == m.batch_size * m.gen_len
        assert m.tokens_per_second > 0
    assert [m.gen_len for m in prof.points("length")] == [4, 8]
    assert data["peak"]["tokens_per_second"] == pytest.approx(prof.peak.tokens_per_second)


def test_table_and_figure(bench_out):
    out, text = bench_out
    assert "tiny-llama: peak" in text and "tiny-m1: peak" in text
    image = mpimg.imread(out / "throughput.png")
    assert (image[..., :3] < 0.95).any(axis=-1).mean() > 0.02


def test_bad_engine_and_model_are_reported(models, tmp_path):
    llama, _ = models
    result = CliRunner().invoke(app, ["bench", "-m", str(llama), "-e", "nosuch", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "unknown engine 'nosuch'" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["bench", "-m", str(llama), "-e", "hf", "--batch-sizes", "1,x"])
    assert result.exit_code != 0 and "comma-separated integers" in " ".join(result.output.split())
