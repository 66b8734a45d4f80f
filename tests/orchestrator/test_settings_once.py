"""A setting defined once (editfleet_common/settings.py): the services' flags and the local fleet's argv
come from the same definitions, and a fleet whose services get their flags elsewhere (Kubernetes) is
refused when what they report differs from the run config, naming the field."""

from __future__ import annotations

import dataclasses

import pytest

from editfleet_common import settings
from editor_service.__main__ import parse_args as editor_args
from orchestrator.config import build_config
from orchestrator.run import RunError, check_run_config
from scorer_service.__main__ import build_parser as scorer_parser


def test_the_local_fleets_argv_makes_each_service_run_as_the_run_config_says(tmp_path):
    from editor_service.adapters import LoraSpec

    lora = tmp_path / "a.safetensors"
    lora.write_bytes(b"x")
    config = build_config({"editor": {"model": "m-edit", "dtype": "float16", "load_format": "dummy",
                                      "speed_mode": "fast", "threads": 3, "scheduler": {"shift": 3.0},
                                      "loras": [{"path": str(lora), "scale": 0.5}]},
                           "judge": {"model": "m-judge", "max_batch": 5, "threads": 2}})
    editor = editor_args(settings.argv(settings.EDITOR_SETTINGS, config.editor))
    judge = scorer_parser().parse_args(settings.argv(settings.JUDGE_SETTINGS, config.judge))
    for section, parsed, run_settings in ((config.editor, editor, settings.EDITOR_SETTINGS),
                                          (config.judge, judge, settings.JUDGE_SETTINGS)):
        for setting in run_settings:
            want = getattr(section, setting.key)
            if setting is settings.LORAS:  # parsed by the editor into LoraSpecs
                want = [LoraSpec(item["path"], item["scale"]) for item in want]
            assert getattr(parsed, setting.dest) == (want if want is not None else setting.service_default), setting
    # left at their defaults, dtype and load format are not passed: the service's own default (auto) runs
    plain = settings.argv(settings.EDITOR_SETTINGS, build_config({"editor": {"model": "m"}}).editor)
    assert "--dtype" not in plain and "--load-format" not in plain and plain[:2] == ["--model", "m"]


def info(model="/models/Qwen-Image-Edit", dtype="bfloat16", load_format="auto", speed_mode="default",
         device="cuda", **top):
    return {"model": {"model": model, "dtype": dtype, "load_format": load_format, "device": device,
                      "content_hash": "h", "runtime": {"speed_mode": speed_mode}}, **top}


class Fleet:
    """Only what check_run_config reads of a fleet (the Kubernetes fleet sets this class attribute)."""

    def __init__(self, checks: bool):
        self.checks_run_config = checks


def test_services_that_run_another_model_or_mode_are_refused_naming_the_field():
    from orchestrator.fleet.kubernetes import KubernetesFleet

    assert KubernetesFleet.checks_run_config
    editor = build_config({"editor": {"model": "/models/Qwen-Image-Edit", "speed_mode": "default"}}).editor
    check_run_config(Fleet(True), settings.EDITOR_SETTINGS, editor, info(), "editor")  # the same: fine
    with pytest.raises(RunError, match=r"editor.model: the run config says '/models/Qwen-Image-Edit', the service "
                                       r"runs '/models/Qwen-Image-Edit-2509' \(its --model\)"):
        check_run_config(Fleet(True), settings.EDITOR_SETTINGS, editor, info(model="/models/Qwen-Image-Edit-2509"),
                         "editor")
    with pytest.raises(RunError, match="editor.speed_mode: the run config says 'default', the service runs 'fast'"):
        check_run_config(Fleet(True), settings.EDITOR_SETTINGS, editor, info(speed_mode="fast"), "editor")
    fp16 = dataclasses.replace(editor, dtype="float16")
    with pytest.raises(RunError, match="editor.dtype"):
        check_run_config(Fleet(True), settings.EDITOR_SETTINGS, fp16, info(), "editor")
    # the local fleet starts its services from the run config: nothing to compare
    check_run_config(Fleet(False), settings.EDITOR_SETTINGS, editor, info(model="other"), "editor")
    # a CPU editor always runs reference, whatever was asked
    check_run_config(Fleet(True), settings.EDITOR_SETTINGS, editor, info(speed_mode="reference", device="cpu"), "editor")

    judge = build_config({"judge": {"model": "/models/Qwen3-VL-8B-Instruct", "max_batch": 8}}).judge
    judge_info = info(model="/models/Qwen3-VL-8B-Instruct", max_batch_size=32)
    with pytest.raises(RunError, match="judge.max_batch: the run config says 8, the service runs 32"):
        check_run_config(Fleet(True), settings.JUDGE_SETTINGS, judge, judge_info, "judge")


def test_editors_with_other_adapters_than_the_run_config_are_refused(tmp_path):
    import json

    lora = tmp_path / "lightning-8step.safetensors"
    lora.write_bytes(b"x")
    # a Kubernetes fleet's editors have their own copy of the file: the config's path need not exist here
    editor = build_config({"editor": {"model": "/models/Qwen-Image-Edit", "loras": [f"/adapters/{lora.name}:0.8"]},
                           "fleet": {"kind": "kubernetes"}}).editor

    def with_loras(*items):
        out = info()
        if items:
            out["model"]["runtime"]["lora"] = json.dumps([{"file": f, "scale": s, "sha256": "h"} for f, s in items])
        return out

    check_run_config(Fleet(True), settings.EDITOR_SETTINGS, editor, with_loras((lora.name, 0.8)), "editor")
    for running in [(), ((lora.name, 1.0),), (("other.safetensors", 0.8),), ((lora.name, 0.8), ("b.safetensors", 1.0))]:
        with pytest.raises(RunError, match="editor.loras: the run config says"):
            check_run_config(Fleet(True), settings.EDITOR_SETTINGS, editor, with_loras(*running), "editor")
    plain = build_config({"editor": {"model": "/models/Qwen-Image-Edit"}}).editor  # no adapters asked for
    check_run_config(Fleet(True), settings.EDITOR_SETTINGS, plain, with_loras(), "editor")
    with pytest.raises(RunError, match=r"editor.loras: the run config says \[\]"):
        check_run_config(Fleet(True), settings.EDITOR_SETTINGS, plain, with_loras((lora.name, 1.0)), "editor")


def test_the_judge_is_given_its_protocols_reply_budget(tmp_path):
    from orchestrator.config import protocol_reply_budget

    kris = build_config({"judge": {"model": "/m", "protocol": "kris"}}).judge
    assert kris.max_new_tokens == 1000  # kris.yaml: the suite's scripts ask for up to 1000 tokens
    assert settings.argv(settings.JUDGE_SETTINGS, kris)[-2:] == ["--max-new-tokens", "1000"]
    assert build_config({"judge": {"protocol": "kris", "max_new_tokens": 64}}).judge.max_new_tokens == 64  # as asked
    plain = build_config({"judge": {"model": "/m", "protocol": "viescore"}}).judge
    assert plain.max_new_tokens is None and "--max-new-tokens" not in settings.argv(settings.JUDGE_SETTINGS, plain)
    (tmp_path / "mine.yaml").write_text("name: mine\nmax_new_tokens: 300\nquestions: {q: {user: x}}")
    mine = build_config({"judge": {"protocol": "mine", "server_args": ["--protocols-dir", str(tmp_path)]}}).judge
    assert mine.max_new_tokens == 300 and protocol_reply_budget(mine) == 300
