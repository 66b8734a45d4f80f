"""Run config: YAML + flags, strict keys and types, clear CLI errors."""

from __future__ import annotations


import pytest
from click.testing import CliRunner

from orchestrator.cli import config_from_flags, main
from orchestrator.config import ConfigError

from conftest import REPO

EMPTY_FLAGS = dict(
    benchmark=None, benchmark_format=None, categories=None, limit=None, language=None, editor_model=None,
    steps=None, guidance=None, negative_prompt=None, seed=None, size=None, threads=None, judge_model=None,
    protocol=None, max_batch=None, gpus=None, editors=None, fleet=None, editor_address=(), scorer_address=None,
    output=None, progress=None, failures=None, lora=(),
)


def flags(**kw):
    return {**EMPTY_FLAGS, **kw}


def test_example_config_paths_are_relative_to_the_file():
    config = config_from_flags(str(REPO / "examples" / "config.yaml"), **flags())
    assert config.benchmark.path == str(REPO / "examples" / "benchmark" / "benchmark.jsonl")
    assert config.editor.model == str(REPO / "models" / "tiny-qwen-image-edit")
    assert config.output == str(REPO / "runs" / "example")
    assert (config.editor_count, config.device_kind, config.editor.steps) == (2, "cpu", 2)


def test_flags_override_the_file(tmp_path):
    config = config_from_flags(
        str(REPO / "examples" / "config.yaml"),
        **flags(steps=7, size="320x240", gpus="0,1,2,3", protocol="viescore", output=str(tmp_path / "o"),
                categories="physical,causal", editor_model="Qwen/Qwen-Image-Edit"),
    )
    assert (config.editor.steps, config.editor.width, config.editor.height) == (7, 320, 240)
    assert config.devices.gpus == [0, 1, 2, 3] and config.devices.editors is None  # --gpus replaces editors: 2
    assert config.editor_count == 4 and config.judge.protocol == "viescore"
    assert config.benchmark.categories == ["physical", "causal"]
    assert config.editor.model == "Qwen/Qwen-Image-Edit"  # a hub id stays an id


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("editor:\n  stepz: 3\n", "unknown key(s) editor.stepz"),
        ("editor:\n  steps: many\n", "editor.steps must be an integer"),
        ("judge:\n  failures: ignore\n", "judge.failures must be one of exclude, zero"),
        ("judge:\n  stall_timeout_s: -1\n", "judge.stall_timeout_s must be >= 0"),
        ("devices:\n  gpus: [0, 0]\n", "devices.gpus must be distinct"),
        ("devices:\n  gpus: [0]\n  editors: 2\n", "devices.gpus or devices.editors, not both"),
        ("editor:\n  width: 256\n", "editor.width and editor.height go together"),
        ("fleet:\n  kind: static\n", "the static fleet needs"),
        ("bogus: 1\n", "unknown key(s) 'bogus'"),
        ("- a\n- b\n", "expected a mapping at the top level"),
        ("editor: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, yaml_text, message):
    path = tmp_path / "run.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        config_from_flags(str(path), **flags())
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_cli_usage_errors_are_messages(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1 and "config file not found" in result.output
    result = runner.invoke(main, ["run", "--benchmark", "x.jsonl"])
    assert result.exit_code == 2 and "missing: editor.model" in result.output
    result = runner.invoke(main, ["run", "--gpus", "0,a", "--benchmark", "x"])
    assert result.exit_code == 2 and "--gpus takes comma-separated integers" in result.output
    result = runner.invoke(main, ["run", "--size", "big", "--benchmark", "x"])
    assert result.exit_code == 1 and "--size must look like 512 or 512x384" in result.output
    for r in (result,):
        assert "Traceback" not in r.output


def test_the_orchestrator_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, orchestrator.cli, orchestrator.run, orchestrator.fleet.local, orchestrator.fleet.static; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'diffusers')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_loras_from_the_file_are_relative_to_it_and_checked(tmp_path):
    from orchestrator.fleet.local import LocalFleet

    (tmp_path / "adapters").mkdir()
    (tmp_path / "adapters" / "fast.safetensors").write_bytes(b"x")
    config_file = tmp_path / "run.yaml"
    config_file.write_text("editor:\n  model: m\n  loras:\n    - {path: adapters/fast.safetensors, scale: 0.5}\n"
                           "    - adapters/fast.safetensors:2\n  scheduler: {shift: 3.0}\n")
    config = config_from_flags(str(config_file), **flags())
    lora = str(tmp_path / "adapters" / "fast.safetensors")
    assert config.editor.loras == [{"path": lora, "scale": 0.5}, {"path": lora, "scale": 2.0}]
    assert config.edit_settings()["loras"][0]["sha256"] == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    fleet = LocalFleet(config, tmp_path / "logs")
    fleet.devices["CPU 0"] = {"device": "cpu", "env": {}}
    argv = fleet._editor_process("CPU 0").argv
    assert argv[argv.index("--lora"):argv.index("--lora") + 4] == ["--lora", f"{lora}:0.5", "--lora", f"{lora}:2.0"]
    assert argv[argv.index("--scheduler") + 1] == '{"shift": 3.0}'
    # a flag replaces the file's list
    assert config_from_flags(str(config_file), **flags(lora=(f"{lora}:0.25",))).editor.loras == [{"path": lora, "scale": 0.25}]


@pytest.mark.parametrize("loras, message", [
    ("[{path: gone.safetensors}]", "editor.loras[0].path: no such file"),
    ("[{scale: 1}]", "editor.loras[0].path is required"),
    ("[{path: a, weight: 1}]", "unknown key(s) editor.loras[0].weight"),
    ("[{path: a, scale: high}]", "editor.loras[0].scale must be a number"),
    ("[3]", "editor.loras[0] must be a mapping"),
])
def test_bad_lora_entries_are_refused_naming_the_key(tmp_path, loras, message):
    (tmp_path / "run.yaml").write_text(f"editor:\n  loras: {loras}\n")
    with pytest.raises(ConfigError) as caught:
        config_from_flags(str(tmp_path / "run.yaml"), **flags())
    assert message in str(caught.value)
