"""benchmarks/gpu_check.py on the CPU: it refuses without CUDA, and its quick mode's logic runs.

The device run itself needs a GPU; what can be checked here is that the script says so
clearly, and that every stage (correctness, speed, m1eval bench, JSON, figure) runs end
to end through the hidden ``--allow-cpu`` flag on the quick shape.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest
import torch

from m1eval.hybrid import kernels

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_refuses_to_run_without_cuda(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "torch.cuda.is_available() is False" in err
    assert not (tmp_path / "gpu_check.json").exists()  # nothing half-written


def test_help_hides_the_cpu_flag(gpu_check, capsys):
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--help"])
    text = capsys.readouterr().out
    assert "--quick" in text and "--allow-cpu" not in text


@pytest.mark.slow
def test_quick_mode_runs_every_stage_on_cpu(gpu_check, tmp_path):
    out = tmp_path / "out"
    code = gpu_check.main(["--quick", "--allow-cpu", "--gen-len", "4", "--budget-s", "900", "--out", str(out)])
    result = json.loads((out / "gpu_check.json").read_text())
    assert code == 0, json.dumps(result, indent=1)[:3000]
    assert result["quick"] and result["shape"]["d_model"] == 256 and result["environment"]["device"] == "cpu"

    correctness = result["correctness"]
    assert correctness["ok"]
    variants = correctness["variants"]
    assert set(variants) == {"fp32-torch", "bf16-torch"}  # no kernels on a CPU
    assert variants["fp32-torch"]["rel_l2"] == 0.0  # the same path on the same device: exact
    assert 0 < variants["bf16-torch"]["rel_l2"] <= gpu_check.TOLERANCES["bfloat16"]["rel_l2"]
    assert correctness["prefill_decode_vs_full"]["ok"]
    assert "skipped" in correctness["cuda_graph_vs_eager"]

    speed = result["speed"]
    for kind in ("m1", "llama"):
        (point,) = speed["points"][kind]
        assert point["status"] == "ok" and point["batch"] == 8 and point["gen_len"] == 4
        assert point["decode_tokens_per_s"] > 0 and point["decode_seconds"] > 0
    (ratio,) = speed["ratios"]
    expected = speed["points"]["m1"][0]["decode_tokens_per_s"] / speed["points"]["llama"][0]["decode_tokens_per_s"]
    assert ratio["m1_over_llama"] == pytest.approx(expected)
    assert speed["peak_batch"] == {"m1": 8, "llama": 8}

    bench = result["bench"]
    assert bench["ok"], bench
    assert {p["engine"] for p in bench["profiles"].values()} == {"m1", "hf"}
    from m1eval.throughput.profile import ThroughputProfile

    for path in (out / "bench").glob("*.json"):  # what `m1eval budget -p` reads
        assert ThroughputProfile.load(path).peak.tokens_per_second > 0
    assert (out / "gpu_check.png").stat().st_size > 1000


def test_a_failing_stage_is_recorded_and_the_others_run(gpu_check, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(gpu_check, "check_correctness", broken)
    out = tmp_path / "out"
    code = gpu_check.main(["--quick", "--allow-cpu", "--skip", "speed,bench", "--out", str(out)])
    result = json.loads((out / "gpu_check.json").read_text())
    assert code == 1
    assert result["correctness"]["ok"] is False and "planted failure" in result["correctness"]["error"]
    assert result["speed"] == {"skipped": "--skip"} and result["bench"] == {"skipped": "--skip"}


@pytest.mark.parametrize("name", sorted(kernels.SOURCES))
def test_kernel_check_inputs_fit_the_reference_signatures(gpu_check, name):
    """The inputs the device check feeds each kernel are valid for m1eval's reference of it."""
    gen = torch.Generator().manual_seed(0)
    args, kwargs, inplace = gpu_check._kernel_inputs(name, torch.device("cpu"), gen)
    before = [args[i].clone() for i in inplace]
    out = kernels.REFERENCE[name](*args, **kwargs)
    first = out[0] if isinstance(out, tuple) else out
    assert torch.isfinite(first).all()
    assert all(not torch.equal(b, args[i]) for b, i in zip(before, inplace))  # the state really advanced


def test_kernels_import_past_a_package_init_that_needs_a_compiled_module(tmp_path, monkeypatch):
    """mamba_ssm installed without its CUDA build: __init__ fails, the Triton submodule still loads."""
    package = tmp_path / "fake_mamba"
    (package / "ops" / "triton").mkdir(parents=True)
    (package / "__init__.py").write_text("import selective_scan_cuda_that_is_not_built\n")
    (package / "ops" / "__init__.py").write_text("")
    (package / "ops" / "triton" / "__init__.py").write_text("")
    (package / "ops" / "triton" / "kernel.py").write_text("def selective_state_update(*a):\n    return 'triton'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(kernels.SOURCES, "selective_state_update",
                        ("fake_mamba.ops.triton.kernel", "selective_state_update"))  # fmt: skip
    monkeypatch.setattr(kernels, "_loaded", {})
    for name in [m for m in sys.modules if m.startswith("fake_mamba")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ModuleNotFoundError):
        import fake_mamba  # noqa: F401
    assert kernels.available()["selective_state_update"]
    assert kernels._load("selective_state_update")() == "triton"
    assert isinstance(sys.modules["fake_mamba"], types.ModuleType)
    monkeypatch.delitem(sys.modules, "fake_mamba")
    for name in [m for m in sys.modules if m.startswith("fake_mamba.")]:
        monkeypatch.delitem(sys.modules, name)
