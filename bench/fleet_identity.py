"""Same edit from every editor service? Issue 18's own test, through the static fleet.

Starts one editor service per `--devices` entry (the same GPU several times: N editors on one GPU;
different GPUs: one per GPU), then runs `orchestrator run --fleet static` over the same samples three
ways: with all the editors, then with each editor alone. Every run's edits are compared sample by sample
(sha256 of the PNG) with the all-editors run; the all-editors run's edits are also grouped by the editor
that made them. Same seed + same sample must give the same edit whatever the number of editors.

    python bench/fleet_identity.py --devices cpu,cpu --model models/tiny-qwen-image-edit --editor-arg=--threads=1 --workdir $TMP/fi -- --config examples/config.yaml --limit 2 --steps 2  # dry run (orchestrator)
    python bench/fleet_identity.py --devices 0,0 --model Qwen/Qwen-Image-Edit --load-format dummy \
        --speed-mode default --workdir /tmp/fi --out $OUT/fleet_identity.json -- --config bench/gpu_run.yaml --limit 4 --steps 20

`--devices 0,0`: two editors on GPU 0 (CUDA_VISIBLE_DEVICES=0 each); `0,1`: one per GPU. CPU runs show the
machinery only: CPU editors run uncompiled `reference`, where the question does not arise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import card_name, git_commit, write_json  # noqa: E402
from bench.compare_edits import digests  # noqa: E402
from editfleet_common.launch import ServiceProcess, free_port, venv_python, wait_all_healthy  # noqa: E402


def start_editors(args, work: Path) -> list[ServiceProcess]:
    procs = []
    for i, device in enumerate(d.strip() for d in args.devices.split(",")):
        port = free_port()
        env = {"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {"CUDA_VISIBLE_DEVICES": device}
        argv = [venv_python("editor"), "-m", "editor_service", "--device", "cpu" if device == "cpu" else "cuda:0",
                "--port", str(port), "--model", args.model, "--load-format", args.load_format,
                "--speed-mode", args.speed_mode, *(["--compile-cache", args.compile_cache] if args.compile_cache else []),
                *args.editor_arg]
        procs.append(ServiceProcess(name=f"editor{i} ({device})", argv=argv, port=port, env=env,
                                    log_path=work / f"editor{i}.log").start())
    errors = wait_all_healthy(procs, args.start_timeout)
    if errors:
        for proc in procs:
            proc.stop()
        raise SystemExit("\n\n".join(errors))
    return procs


def run(name: str, addresses: list[str], run_args: list[str], work: Path) -> dict:
    out = work / name
    cmd = [sys.executable, "-m", "orchestrator", "run", *run_args, "--fleet", "static", "--no-score",
           *[a for address in addresses for a in ("--editor-address", address)], "--output", str(out),
           "--progress", "plain"]
    print("$", " ".join(cmd), flush=True)
    started = time.perf_counter()
    done = subprocess.run(cmd)
    lines = (out / "edits.jsonl").read_text().splitlines() if (out / "edits.jsonl").exists() else []
    made_by = {r["id"]: r.get("editor", "") for r in map(json.loads, lines) if r.get("status") == "ok"}
    return {"exit_code": done.returncode, "wall_s": round(time.perf_counter() - started, 1),
            "edits": digests(out / "edits"), "made_by": made_by}  # edits by their path under edits/


def compare(reference: dict, other: dict) -> dict:
    common = sorted(set(reference["edits"]) & set(other["edits"]))
    same = [k for k in common if reference["edits"][k] == other["edits"][k]]
    return {"compared": len(common), "identical": len(same), "differing": sorted(set(common) - set(same))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", default="0,0", help="one editor per entry: cpu, or a GPU index (repeat one: N on it)")
    p.add_argument("--model", required=True)
    p.add_argument("--load-format", default="auto", choices=["auto", "dummy"])
    p.add_argument("--speed-mode", default="default", choices=["reference", "default", "fast"])
    p.add_argument("--compile-cache", default=None, metavar="DIR", help="the editors' portable compile cache")
    p.add_argument("--editor-arg", action="append", default=[], help="one more editor flag (repeatable)")
    p.add_argument("--start-timeout", type=float, default=900.0)
    p.add_argument("--workdir", default="/tmp/editfleet-fleet-identity")
    p.add_argument("--out", default=None)
    p.add_argument("run_args", nargs=argparse.REMAINDER, help="arguments after -- go to `orchestrator run`")
    args = p.parse_args(argv)
    run_args = [a for a in args.run_args if a != "--"]
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    procs = start_editors(args, work)
    try:
        addresses = [proc.address for proc in procs]
        runs = {"all": run("all", addresses, run_args, work)}
        for i, address in enumerate(addresses):
            runs[f"editor{i}"] = run(f"editor{i}", [address], run_args, work)
    finally:
        for proc in procs:
            proc.stop()
    reference = runs["all"]
    summary = {
        "bench": "fleet_identity", "card": card_name(), "date": time.strftime("%Y-%m-%d"), "git": git_commit(),
        "command": " ".join(sys.argv), "devices": args.devices, "speed_mode": args.speed_mode,
        "runs": {name: {k: v for k, v in r.items() if k != "made_by"} for name, r in runs.items()},
        "made_by_in_all": reference["made_by"],
        "alone_vs_all": {name: compare(reference, r) for name, r in runs.items() if name != "all"},
        "alone_vs_alone": {f"editor0 vs editor{i}": compare(runs["editor0"], runs[f"editor{i}"])
                           for i in range(1, len(procs))},
    }
    ok = all(r["exit_code"] == 0 and r["edits"] for r in runs.values())
    summary["all_identical"] = ok and all(c["identical"] == c["compared"] == len(reference["edits"])
                                          for c in summary["alone_vs_all"].values())
    for name, c in summary["alone_vs_all"].items():
        print(f"{name} alone vs all editors: {c['identical']}/{c['compared']} byte-identical", flush=True)
    write_json(args.out, summary)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
