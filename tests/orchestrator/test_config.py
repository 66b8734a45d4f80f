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
    output=None, progress=None, failures=None, judge_backend=None, judge_base_url=None, lora=(),
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
        ("judge:\n  backend: gpt\n", "judge.backend must be one of transformers, openai"),
        ("judge:\n  backend: openai\n  model: m\n", "judge.base_url must be the endpoint's http(s) URL"),
        ("judge:\n  backend: openai\n  base_url: https://api.example.com/v1\n", "judge.model is required"),
        ("judge:\n  backend: openai\n  model: m\n  base_url: https://u:p@api.example.com/v1\n",
         "must not carry credentials"),
        ("judge:\n  backend: openai\n  model: m\n  base_url: https://api.example.com/v1?api-key=abc\n",
         "must not carry credentials (query parameter 'api-key')"),
        ("judge:\n  backend: openai\n  model: m\n  base_url: https://api.example.com/v1\n  api_key_env: sk-abc123\n",
         "NAME of an environment variable"),
        ("judge:\n  max_concurrency: 0\n", "judge.max_concurrency must be >= 1"),
        ("judge:\n  request_timeout_s: 0\n", "judge.request_timeout_s must be > 0"),
        ("judge:\n  replicas: 3\ndevices:\n  gpus: [0, 1]\n", "judge.replicas 3 is more than the run's GPUs"),
        ("judge:\n  replicas: 2\ndevices:\n  gpus: [0, 1]\n  judge_gpu: 1\n", "devices.judge_gpu puts the judge"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, yaml_text, message):
    path = tmp_path / "run.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        config_from_flags(str(path), **flags())
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_an_api_judge_is_configured_by_name_and_url(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("judge:\n  backend: openai\n  model: gpt-4.1-2025-04-14\n  base_url: https://api.example.com/v1\n"
                    "  api_key_env: MY_KEY\n  max_concurrency: 3\n")
    config = config_from_flags(str(path), **flags())
    j = config.judge
    assert (j.backend, j.model, j.api_key_env, j.max_concurrency, j.max_retries) == (
        "openai", "gpt-4.1-2025-04-14", "MY_KEY", 3, 5)
    assert config.judge_settings()["backend"] == "openai"
    assert config.judge_settings()["base_url"] == "https://api.example.com/v1"
    # the default backend adds nothing: run dirs made before it existed resume as they were
    local = config_from_flags(str(REPO / "examples" / "config.yaml"), **flags())
    assert set(local.judge_settings()) == {"model", "protocol", "dtype", "load_format"}
    flagged = config_from_flags(str(REPO / "examples" / "config.yaml"),
                                **flags(judge_backend="openai", judge_base_url="http://127.0.0.1:8000/v1",
                                        judge_model="Qwen/Qwen3-VL-8B-Instruct"))
    assert (flagged.judge.backend, flagged.judge.base_url) == ("openai", "http://127.0.0.1:8000/v1")


def test_judge_replicas_default_to_one_per_gpu_of_the_run(tmp_path):
    example = str(REPO / "examples" / "config.yaml")
    assert config_from_flags(example, **flags()).judge_replicas == 1  # CPU editors: one judge
    assert config_from_flags(example, **flags(gpus="0,1,2")).judge_replicas == 3  # the editors' GPUs, freed
    path = tmp_path / "run.yaml"
    path.write_text("devices:\n  gpus: [0, 1, 2]\n  judge_gpu: 2\n")
    assert config_from_flags(str(path), **flags()).judge_replicas == 1  # a chosen judge GPU: one judge
    path.write_text("judge:\n  replicas: 2\ndevices:\n  editors: 2\n")
    assert config_from_flags(str(path), **flags()).judge_replicas == 2  # on the CPU when asked for
    api = config_from_flags(example, **flags(gpus="0,1", judge_backend="openai", judge_base_url="https://x.example/v1"))
    assert api.judge_replicas == 1  # an API judge: concurrency is judge.max_concurrency


def test_a_judge_over_several_gpus_gets_its_own_gpus_per_replica(tmp_path):
    from orchestrator.fleet.local import LocalFleet

    path = tmp_path / "run.yaml"
    path.write_text("editor:\n  model: m\njudge:\n  model: j\n  gpus_per_replica: 2\ndevices:\n  gpus: [0, 1, 2, 3, 4]\n")
    config = config_from_flags(str(path), **flags())
    assert config.judge_replicas == 2  # 5 GPUs, 2 per replica: the fifth idles while judging
    assert [config.judge_replica_gpus(i) for i in range(2)] == [[0, 1], [2, 3]]
    fleet = LocalFleet(config, tmp_path / "logs")
    try:
        replicas = [fleet._scorer_process(staged=False, index=i) for i in range(2)]
        assert fleet.prestart_scorer() is False  # a staged judge moves to one GPU: not for a split one
    finally:
        fleet.close()
    for proc, visible in zip(replicas, ("0,1", "2,3")):
        assert proc.env["CUDA_VISIBLE_DEVICES"] == visible
        assert proc.argv[proc.argv.index("--device") + 1] == "cuda"
        assert proc.argv[proc.argv.index("--gpus") + 1] == "2"
    # one GPU per replica (the default) passes no --gpus: the scorer's default
    path.write_text("editor:\n  model: m\njudge:\n  model: j\ndevices:\n  gpus: [0, 1]\n")
    single = LocalFleet(config_from_flags(str(path), **flags()), tmp_path / "logs2")
    try:
        proc = single._scorer_process(staged=False, index=1)
    finally:
        single.close()
    assert "--gpus" not in proc.argv and proc.env["CUDA_VISIBLE_DEVICES"] == "1"
    # the flag of `orchestrator run`
    flagged = config_from_flags(str(path), **flags(judge_gpus_per_replica=2))
    assert (flagged.judge.gpus_per_replica, flagged.judge_replicas) == (2, 1)


@pytest.mark.parametrize("yaml_text, message", [
    ("judge:\n  gpus_per_replica: 0\ndevices:\n  gpus: [0, 1]\n", "judge.gpus_per_replica must be >= 1"),
    ("judge:\n  gpus_per_replica: 3\ndevices:\n  gpus: [0, 1]\n", "judge.gpus_per_replica 3 is more than the run's GPUs [0, 1]"),
    ("judge:\n  gpus_per_replica: 2\ndevices:\n  editors: 2\n", "needs the run's GPUs (devices.gpus) on the local fleet"),
    ("judge:\n  gpus_per_replica: 2\ndevices:\n  gpus: [0, 1]\n  judge_gpu: 1\n", "without devices.judge_gpu"),
    ("judge:\n  gpus_per_replica: 2\n  backend: openai\n  base_url: https://x.example/v1\n  model: m\n",
     "it needs judge.backend transformers"),
    ("judge:\n  gpus_per_replica: 2\n  replicas: 2\ndevices:\n  gpus: [0, 1, 2]\n",
     "judge.replicas 2 x judge.gpus_per_replica 2 is more than the run's GPUs [0, 1, 2]"),
])
def test_bad_gpus_per_replica_is_refused_naming_the_key(tmp_path, yaml_text, message):
    (tmp_path / "run.yaml").write_text("editor:\n  model: m\n" + yaml_text)
    with pytest.raises(ConfigError) as caught:
        config_from_flags(str(tmp_path / "run.yaml"), **flags())
    assert message in str(caught.value)


def test_an_api_key_given_as_the_variable_name_is_not_echoed(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("judge:\n  backend: openai\n  model: m\n  base_url: https://api.example.com/v1\n"
                    "  api_key_env: sk-live-0123456789\n")
    with pytest.raises(ConfigError) as info:
        config_from_flags(str(path), **flags())
    assert "sk-live-0123456789" not in str(info.value)


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


def test_compile_cache_is_a_path_relative_to_the_file_and_reaches_every_editor(tmp_path):
    from orchestrator.fleet.local import LocalFleet

    (tmp_path / "run.yaml").write_text("editor:\n  model: m\n  compile_cache: caches/compiled\n")
    config = config_from_flags(str(tmp_path / "run.yaml"), **flags())
    assert config.editor.compile_cache == str(tmp_path / "caches" / "compiled")
    assert config_from_flags(str(tmp_path / "run.yaml"), **flags(compile_cache="/shared/cc")).editor.compile_cache == "/shared/cc"
    fleet = LocalFleet(config, tmp_path / "logs")
    try:
        fleet.devices = {"CPU 0": {"device": "cpu", "env": {}}}
        argv = fleet._editor_process("CPU 0").argv
    finally:
        fleet.close()
    assert argv[argv.index("--compile-cache") + 1] == str(tmp_path / "caches" / "compiled")


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
