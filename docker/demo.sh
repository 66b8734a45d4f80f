#!/usr/bin/env bash
# `make container-demo`: the example benchmark against containers built by `make images`.
# Two editor containers and a scorer container (tiny models mounted read-only from models/), then
# the orchestrator container with the static fleet; then a SIGTERM check on one editor.
# Writes runs/container-demo/. Too slow for CI (image builds); see README "Containers".
set -euo pipefail
cd "$(dirname "$0")/.."
source docker/engine.sh
E=$CONTAINER_ENGINE
PY=${PYTHON:-python3}
OUT=runs/container-demo
NAMES=(efdemo-editor-0 efdemo-editor-1 efdemo-scorer)

cleanup() { "$E" rm -f "${NAMES[@]}" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# safetensors writes weight files 0600; the images run as uid 10001, not as the files' owner.
chmod -R a+rX models/tiny-qwen-image-edit models/tiny-qwen3-vl
rm -rf "$OUT" && mkdir -p "$OUT" && chmod 0777 "$OUT"

editor_ports=() editor_args=()
for i in 0 1; do
    port=$(free_port)
    editor_ports+=("$port")
    editor_args+=(--editor-address "127.0.0.1:$port")
    "$E" run -d --name "efdemo-editor-$i" "${ENGINE_FLAGS[@]}" -v "$PWD/models:/models:ro" \
        -p "127.0.0.1:$port:50051" "${IMAGE_PREFIX}editor:${IMAGE_TAG}" \
        --model /models/tiny-qwen-image-edit --device cpu --host 0.0.0.0 --port 50051 --threads 1 >/dev/null
done
scorer_port=$(free_port)
"$E" run -d --name efdemo-scorer "${ENGINE_FLAGS[@]}" -v "$PWD/models:/models:ro" \
    -p "127.0.0.1:$scorer_port:50052" "${IMAGE_PREFIX}scorer:${IMAGE_TAG}" \
    --model /models/tiny-qwen3-vl --device cpu --host 0.0.0.0 --port 50052 --threads 2 >/dev/null
echo "== editors on 127.0.0.1:${editor_ports[*]}, scorer on 127.0.0.1:$scorer_port"

# The orchestrator in its own container on the host network; the static fleet waits for SERVING.
# models/ is mounted too so that the config's model paths resolve as in the editors (/models/...).
start=$SECONDS
"$E" run --rm --name efdemo-orchestrator "${ENGINE_FLAGS[@]}" --network host \
    -v "$PWD/examples:/examples:ro" -v "$PWD/models:/models:ro" -v "$PWD/$OUT:/runs" \
    "${IMAGE_PREFIX}orchestrator:${IMAGE_TAG}" \
    run --config /examples/config.yaml --fleet static "${editor_args[@]}" --scorer-address "127.0.0.1:$scorer_port" \
    --output /runs --progress plain
echo "== benchmark done in $((SECONDS - start))s"

"$PY" - "$OUT" <<'PYEOF'
import hashlib, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
summary = json.loads((out / "summary.json").read_text())
print("== summary: samples %(samples)s, edited %(edited)s, edit failures %(edit_failures)s, scored %(scored)s, "
      "score failures %(score_failures)s, complete %(complete)s" % summary)
assert summary["edited"] == summary["samples"] > 0 and summary["complete"], "not every sample was edited"
# Same seed + same sample => same edit: compare with a local (non-container) run if there is one.
local = pathlib.Path("runs/example")
if (local / "edits").is_dir():
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    ours = {p.relative_to(out / "edits"): digest(p) for p in (out / "edits").rglob("*.png")}
    theirs = {p.relative_to(local / "edits"): digest(p) for p in (local / "edits").rglob("*.png")}
    common = sorted(set(ours) & set(theirs))
    same = sum(ours[k] == theirs[k] for k in common)
    print(f"== edits byte-identical to the local run in {local}: {same}/{len(common)}")
PYEOF

# SIGTERM reaches the server (python is PID 1, exec-form ENTRYPOINT): it drains and exits 0 at
# once instead of being SIGKILLed when the stop timeout runs out.
start=$SECONDS
"$E" stop -t 60 efdemo-editor-0 >/dev/null
code=$("$E" inspect --format '{{.State.ExitCode}}' efdemo-editor-0)
echo "== editor stop: exit code $code after $((SECONDS - start))s (stop timeout 60s)"
"$E" logs efdemo-editor-0 2>&1 | grep -E "signal SIGTERM|stopped" | tail -2
[[ $code == 0 ]] || { echo "editor did not exit cleanly on SIGTERM" >&2; exit 1; }
echo "== container demo OK; results in $OUT"
