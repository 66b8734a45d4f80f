"""Run configs and protocol files load with an alias/size limit and fail in one line naming the file
(issue 28 item 8): a "billion laughs" (nine levels of nine aliases, 9**9 strings once expanded) under
editor.extras hung the orchestrator at 3.25 GB; in a --protocols-dir file it ended in a MemoryError
traceback. The CLI runs here under a 2 GB address-space limit, so the old behaviour fails fast."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import pytest

from conftest import EXAMPLE, REPO, orchestrator_cmd
from orchestrator.config import ConfigError, load_yaml
from suites.shared.protocol import ProtocolError


def bomb(indent: str = "", levels: int = 9) -> str:
    """Anchors a..i: a is a list of nine strings, each next one nine aliases of the one before."""
    lines = [f'{indent}a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        name, prev = chr(97 + i), chr(96 + i)
        lines.append(f"{indent}{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def cli(*args, timeout=60) -> tuple[int, str]:
    done = subprocess.run(orchestrator_cmd(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_limit_memory)
    return done.returncode, done.stdout + done.stderr


def test_an_alias_bomb_in_a_run_config_is_a_one_line_error_naming_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("editor:\n  model: m\n  extras:\n" + bomb("    "))
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message and "aliases" in message

    code, output = cli("run", "--config", str(path), "--benchmark", str(EXAMPLE), "--judge-model", "j",
                       "--editors", "1", "--no-score", "--output", str(tmp_path / "out"))
    assert code in (1, 2), output  # refused with one `Error: ...` line (docs/running.md#exit-codes)
    assert output.strip().count("\n") == 0 and str(path) in output and "Traceback" not in output, output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, words", [
    ("editor:\n  extras:\n    x: &x [1, *x]\n", "recursive"),
    ("editor:\n  extras:\n    x: " + "[" * 80 + "]" * 80 + "\n", "nested deeper"),
    ("editor:\n  negative_prompt: '" + "x" * (2 << 20) + "'\n", "over the limit of"),
])
def test_other_unbounded_configs_are_refused_in_one_line(tmp_path, text, words):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value) and words in str(info.value)


PARSE = """
import sys
from pathlib import Path
from suites.catalog import catalog
from suites.shared.protocol import ProtocolError, parse_protocol
path = Path(sys.argv[1])
try:
    parse_protocol(path.read_text(), path, catalog().rules)
except ProtocolError as exc:
    print(f"error: {exc}")
    sys.exit(2)
"""


def test_an_alias_bomb_in_a_protocol_file_is_a_one_line_error_naming_the_file(tmp_path):
    path = tmp_path / "protocols" / "bombed.yaml"
    path.parent.mkdir()
    path.write_text(bomb() + "name: bombed\nquestions:\n  score:\n    user: 'Rate {edit_instruction}'\n"
                    "    captions: *i\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", PARSE, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=60, preexec_fn=_limit_memory)
    output = done.stdout + done.stderr
    assert time.monotonic() - started < 30
    assert done.returncode == 2 and "Traceback" not in output, output
    assert output.strip().count("\n") == 0 and str(path) in output and "aliases" in output, output
