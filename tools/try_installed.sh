#!/usr/bin/env bash
# editfleet as a user installs it (issue 32; `make test-installed`, part of `make test`):
#   1. the sdist and the wheel built as pip builds them (python -m build: isolated, the wheel from the sdist);
#   2. a fresh virtual environment OUTSIDE the checkout: the CPU torch pin first (requirements-torch.txt),
#      then the wheel with every extra, editfleet[editor,scorer,orchestrator] (torch held to the pin);
#   3. from a folder outside the checkout, with nothing of it on sys.path: orchestrator --help, --version
#      (the pyproject version), the services' commands, every packaged data file present, validate on a
#      copy of the example benchmark, and a tiny end-to-end run (2 samples, 2 steps, 32 px, 1 editor) on
#      the tiny models, whose manifest must carry the version (orchestrator, editor and judge identity).
# Needs `make setup` (the orchestrator environment has `build`; models/ has the tiny models).
# KEEP=1 keeps the work folder (printed); PYTHON picks the interpreter of the fresh environment.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd -P)
PYTHON=${PYTHON:-python3}
BUILD_PY=${BUILD_PY:-$REPO/.venv/orchestrator/bin/python}
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
EDITOR_MODEL=$REPO/models/tiny-qwen-image-edit
JUDGE_MODEL=$REPO/models/tiny-qwen3-vl-taught
for model in "$EDITOR_MODEL" "$JUDGE_MODEL"; do
    [[ -d $model ]] || { echo "try_installed: $model is missing: run 'make models' first" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/editfleet-installed.XXXXXX")
case "$work" in "$REPO"/*) echo "try_installed: $work is inside the checkout" >&2; exit 1;; esac
if [[ ${KEEP:-} == 1 ]]; then echo "try_installed: keeping $work"; else trap 'rm -rf "$work"' EXIT; fi
start=$SECONDS
step() { echo "== [$((SECONDS - start))s] $*"; }
quiet() {  # run, showing the output only when it fails
    local log=$work/step.log
    if ! "$@" >"$log" 2>&1; then tail -n 60 "$log" >&2; echo "try_installed: failed: $*" >&2; exit 1; fi
}

step "sdist and wheel (python -m build, isolated) -> $work/dist"
quiet "$BUILD_PY" -m build --outdir "$work/dist" "$REPO"
wheels=("$work"/dist/editfleet-"$VERSION"-py3-none-any.whl)
[[ -f ${wheels[0]} ]] || { echo "try_installed: no editfleet-$VERSION wheel in $work/dist" >&2; ls "$work/dist" >&2; exit 1; }
wheel=${wheels[0]}

step "fresh environment $work/venv: torch (requirements-torch.txt), then $(basename "$wheel")[editor,scorer,orchestrator]"
quiet "$PYTHON" -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip install -q --disable-pip-version-check)
quiet "${pip[@]}" -r "$REPO/requirements-torch.txt"
quiet "${pip[@]}" -c "$REPO/requirements-torch.txt" "$wheel[editor,scorer,orchestrator]"

# From here on: outside the checkout, its environment variables and paths gone.
cd "$work"
unset PYTHONPATH VIRTUAL_ENV
export PATH="$work/venv/bin:$PATH"
py=$work/venv/bin/python

step "nothing of the checkout on sys.path; every package and data file from the environment"
REPO=$REPO "$py" - <<'EOF'
import importlib, os, subprocess, sys
from pathlib import Path

repo = Path(os.environ["REPO"])
inside = [p for p in sys.path if p and Path(p).resolve().is_relative_to(repo)]
assert not inside, f"checkout paths on sys.path: {inside}"
site = None
for name in ("orchestrator", "editor_service", "scorer_service", "suites", "editfleet_common", "editfleet.v1",
             "editfleet.v1.editor_pb2", "editfleet.v1.scorer_pb2_grpc"):
    module = importlib.import_module(name)
    where = Path(module.__file__).resolve()
    assert not where.is_relative_to(repo), f"{name} imported from the checkout: {where}"
    site = site or where.parents[1 if name.count(".") == 0 else name.count(".") + 1]
# Every file of the packages that is not Python (suites' YAML/README, configs, stand-in tokenizer)
packaged = subprocess.run(["git", "-C", str(repo), "ls-files", "editfleet_common", "editor_service", "scorer_service",
                           "orchestrator", "suites"], capture_output=True, text=True, check=True).stdout.split()
untracked = subprocess.run(["git", "-C", str(repo), "ls-files", "--others", "--exclude-standard", "editfleet_common",
                            "editor_service", "scorer_service", "orchestrator", "suites"],
                           capture_output=True, text=True, check=True).stdout.split()
data = [f for f in packaged + untracked if not f.endswith(".py") and (repo / f).is_file()]
missing = [f for f in data if not (site / f).is_file()]
assert not missing, f"not in the installed package: {missing}"
print(f"ok: {len(data)} data files, packages from {site}")
EOF

step "orchestrator --help / --version; editfleet-editor, editfleet-scorer"
quiet orchestrator --help
got=$(orchestrator --version)
[[ $got == "orchestrator (editfleet) $VERSION" ]] || { echo "orchestrator --version: '$got', expected $VERSION" >&2; exit 1; }
echo "$got"
for command in editfleet-editor editfleet-scorer; do
    got=$("$command" --version)
    [[ $got == "$command $VERSION" ]] || { echo "$command --version: '$got'" >&2; exit 1; }
    quiet "$command" --help
done

step "orchestrator validate (a copy of examples/benchmark) and suites"
cp -r "$REPO/examples/benchmark" "$work/benchmark"
orchestrator validate benchmark/benchmark.jsonl
quiet orchestrator suites

step "a tiny end-to-end run from $work: 2 samples, 2 steps, 32 px, 1 editor, the demo judge"
orchestrator run --benchmark benchmark/benchmark.jsonl --limit 2 --steps 2 --size 32 \
    --editor-model "$EDITOR_MODEL" --judge-model "$JUDGE_MODEL" --editors 1 --output "$work/run" \
    >"$work/run.log" 2>&1 || { tail -n 80 "$work/run.log"; for f in "$work"/run/logs/*; do echo "--- $f"; tail -n 30 "$f"; done; exit 1; }
tail -n 4 "$work/run.log"
VERSION=$VERSION REPO=$REPO "$py" - <<'EOF'
import json, os
from pathlib import Path

version = os.environ["VERSION"]
run = Path("run")
manifest = json.loads((run / "manifest.json").read_text())
summary = json.loads((run / "summary.json").read_text())
scores = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines() if line.strip()]
assert len(scores) == 2, scores
assert manifest["packages"]["orchestrator"]["editfleet"] == version, manifest["packages"]
assert manifest["editor"]["model"]["editfleet_version"] == version, manifest["editor"]["model"]
assert manifest["judge"]["model"]["editfleet_version"] == version, manifest["judge"]["model"]
assert manifest["git"].get("commit") is None, manifest["git"]  # not a checkout: no commit claimed
print(f"ok: 2 samples edited and judged; version {version} in the manifest (orchestrator, editor, judge)")
EOF
step "done"
