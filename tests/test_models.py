"""Model presets, model resolution, prompt rendering and the `m1eval models` table."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.models.presets import M1_SUFFIX, PRESETS, R1_SUFFIX, ModelError, resolve_model
from m1eval.models.prompts import PromptError, render, template_hash, user_message
from m1eval.models.tiny import build_tokenizer


def test_presets_carry_paper_settings():
    m1 = PRESETS["m1"]
    assert (m1.hub_id, m1.engine, m1.temperature, m1.top_p, m1.suffix) == (
        "togethercomputer/M1-3B",
        "m1",
        0.7,
        1.0,
        M1_SUFFIX,
    )
    for name, hub in [("r1-qwen-1.5b", "Qwen-1.5B"), ("r1-qwen-7b", "Qwen-7B"), ("r1-llama-8b", "Llama-8B")]:
        preset = PRESETS[name]
        assert preset.hub_id == f"deepseek-ai/DeepSeek-R1-Distill-{hub}"
        assert (preset.engine, preset.temperature, preset.top_p, preset.suffix) == ("vllm", 0.6, 0.95, R1_SUFFIX)
    assert PRESETS["llama-3.2-3b"].hub_id == "meta-llama/Llama-3.2-3B-Instruct"
    # the embedded CPU demo model is capped lower (m1eval.models.presets.SMOLLM2_MAX_TOKENS)
    assert all(p.max_tokens == 32768 for p in PRESETS.values() if p.name != "smollm2-135m")
    assert PRESETS["smollm2-135m"].max_tokens == 512
    assert M1_SUFFIX == "Let's think step by step and output the final answer within \\boxed{}."


def test_resolve_preset_and_engine_override():
    model = resolve_model("r1-qwen-1.5b")
    assert (model.name, model.engine, model.preset) == ("r1-qwen-1.5b", "vllm", "r1-qwen-1.5b")
    assert resolve_model("r1-qwen-1.5b", "hf").engine == "hf"


def test_resolve_folder_and_hub_id_need_engine(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    with pytest.raises(ModelError, match="name an engine"):
        resolve_model(str(folder))
    local = resolve_model(str(folder), "hf")
    assert (local.name, local.path, local.preset) == ("my-model", str(folder.resolve()), None)
    hub = resolve_model("org/Some-Model", "vllm")
    assert (hub.name, hub.path) == ("Some-Model", "org/Some-Model")


def test_unknown_model_is_named():
    with pytest.raises(ModelError, match="unknown model 'no-such-model'.*r1-qwen-1.5b"):
        resolve_model("no-such-model", "vllm")


def test_render_uses_chat_template_and_suffix(tmp_path):
    tokenizer = build_tokenizer(tmp_path / "tok")
    text, ids = render(tokenizer, "What is 1+1?", R1_SUFFIX)
    assert text == f"<|user|>What is 1+1?\n{R1_SUFFIX}<|end|><|assistant|>"
    assert tokenizer.decode(ids) == text
    assert user_message("  Q  ", "") == "Q"
    assert len(template_hash(tokenizer)) == 16
    tokenizer.chat_template = None
    with pytest.raises(PromptError, match="no chat template"):
        render(tokenizer, "Q", R1_SUFFIX)


def test_models_verb_lists_every_preset():
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name, preset in PRESETS.items():
        assert name in result.output and preset.hub_id in result.output


def test_tiny_models_from_the_command_line(tmp_path, capsys):
    """The README's bench example builds its models with `python -m m1eval.models.tiny KIND FOLDER`."""
    import json
    import subprocess
    import sys

    from m1eval.models import tiny

    assert tiny.main(["m1", str(tmp_path / "tiny-m1")]) == 0
    assert "tiny m1 model written to" in capsys.readouterr().out
    assert json.loads((tmp_path / "tiny-m1" / "mamba_config.json").read_text())["attn_layers"] == [1, 3]
    result = subprocess.run(
        [sys.executable, "-m", "m1eval.models.tiny", "llama", str(tmp_path / "tiny-llama")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "tiny-llama" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and (tmp_path / "tiny-llama" / "model.safetensors").exists()
    with pytest.raises(SystemExit):
        tiny.main(["gpt", str(tmp_path / "x")])
