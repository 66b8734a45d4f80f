"""Each setting once (issue 26 item 6): every option of `orchestrator run` and `score` that sets a run
config key comes from a Setting table (orchestrator/setting_flags.py), and stop_after_failures is a key
like the others (issue 27's leftover)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from orchestrator import setting_flags
from orchestrator.cli import config_from_flags, main
from orchestrator.config import ConfigError
from tools import gen_docs


def test_every_option_that_sets_a_run_config_key_comes_from_a_setting_table():
    tables = [setting_flags.RUN_CONFIG_FLAGS, setting_flags.RUN_FLAGS, setting_flags.SCORE_FLAGS,
              setting_flags.SCORE_CONFIG_FLAGS, [setting_flags.RUN_STOP_AFTER_FAILURES]]
    from_tables = {flag.flag for table in tables for flag in table}
    setters = {flag.rsplit(" ", 1)[1] for flags in gen_docs.flag_keys().values() for flag in flags
               if flag.startswith(("orchestrator run ", "orchestrator score "))}
    assert "--steps" in setters and "--stop-after-failures" in setters
    assert setters <= from_tables, f"hand-written: {sorted(setters - from_tables)}"
    # and each table flag is an option of its command
    for command, table_list in ((main.commands["run"], tables[:2] + tables[4:]), (main.commands["score"], tables[2:4])):
        names = {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts}
        assert {flag.flag for table in table_list for flag in table} <= names


def test_stop_after_failures_is_a_run_config_key(tmp_path, monkeypatch):
    path = tmp_path / "run.yaml"
    path.write_text("stop_after_failures: 5\n")
    assert config_from_flags(str(path)).stop_after_failures == 5
    assert config_from_flags(str(path), stop_after_failures=0).stop_after_failures == 0  # the flag wins
    assert config_from_flags(None).stop_after_failures == 3
    path.write_text("stop_after_failures: -1\n")
    with pytest.raises(ConfigError, match="stop_after_failures must be >= 0, got -1"):
        config_from_flags(str(path))

    seen = {}

    def execute(config, **kwargs):  # where the run would start: what it is handed
        seen.update(kwargs)
        raise ConfigError("stopped here")

    import orchestrator.run

    monkeypatch.setattr(orchestrator.run, "execute", execute)
    path.write_text("stop_after_failures: 7\nbenchmark:\n  path: b.jsonl\neditor:\n  model: m\n")
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--no-score"])
    assert "stopped here" in result.output and seen["stop_after_failures"] == 7
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--no-score", "--stop-after-failures", "1"])
    assert seen["stop_after_failures"] == 1
    assert "[default: 3; x>=0]" in " ".join(CliRunner().invoke(main, ["run", "--help"]).output.split())


def test_score_with_another_protocol_follows_that_protocols_reply_budget(tmp_path, monkeypatch):
    """A KRIS-Bench run records the budget its protocol gave it (1000); re-judged with another protocol,
    the judge gets that protocol's own budget (none: the judge's 128), not KRIS-Bench's, unless a budget
    is named: on `score`, or by the run itself."""
    import json

    import orchestrator.run
    from editfleet_common import settings
    from orchestrator.config import build_config

    judged = []

    def execute(config, **kwargs):  # where the re-judge would start: the judge's settings it is handed
        judged.append(config.judge)
        raise ConfigError("stopped here")

    monkeypatch.setattr(orchestrator.run, "execute", execute)

    def score(judge: dict, *flags: str):
        run = tmp_path / f"run{len(judged)}"
        run.mkdir()
        recorded = build_config({"judge": {"model": "/m", **judge}}).to_dict()  # as a run records it
        (run / "manifest.json").write_text(json.dumps({"config": recorded}))
        result = CliRunner().invoke(main, ["score", str(run), *flags])
        assert "stopped here" in result.output, result.output
        return judged[-1]

    assert build_config({"judge": {"protocol": "kris"}}).judge.max_new_tokens == 1000  # what a KRIS run records
    viescore = score({"protocol": "kris"}, "--protocol", "viescore")
    assert viescore.max_new_tokens is None and "--max-new-tokens" not in settings.argv(settings.JUDGE_SETTINGS, viescore)
    assert settings.reply_budget(viescore.max_new_tokens, None) == 128  # what the judge then answers with
    assert score({"protocol": "kris"}, "--protocol", "re-edit").max_new_tokens == 512  # re-edit.yaml's own
    assert score({"protocol": "kris"}).max_new_tokens == 1000  # the same protocol: the same budget
    assert score({"protocol": "kris"}, "--protocol", "viescore", "--judge-max-new-tokens", "64").max_new_tokens == 64
    assert score({"protocol": "kris", "max_new_tokens": 256}, "--protocol", "viescore").max_new_tokens == 256  # named
