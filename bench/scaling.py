"""Scaling: `orchestrator run` with 1, 2, ... editors over the same samples and steps.

Each run gets a fresh output dir. From each run's manifest: editors-up time, editing-phase time
(first request to last result: the throughput measure), editors-down time (processes exited, GPU
memory free), scorer-up time (start to SERVING), judging time, and the whole run's wall time.

    python bench/scaling.py --counts 1 --editors-flag editors --workdir $TMP/scaling -- --config examples/config.yaml --limit 2 --steps 2 --no-score  # dry run (orchestrator)
    python bench/scaling.py --counts 1,2 --editors-flag gpus -- --config bench/gpu_run.yaml           # GPUs 0..N-1
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--counts", default="1,2")
    p.add_argument("--editors-flag", choices=["gpus", "editors"], default="gpus")
    p.add_argument("--workdir", default="/tmp/editfleet-scaling")
    p.add_argument("--out", default=None)
    p.add_argument("run_args", nargs=argparse.REMAINDER, help="arguments after -- go to `orchestrator run`")
    args = p.parse_args(argv)
    run_args = [a for a in args.run_args if a != "--"]
    rows = []
    for count in [int(c) for c in args.counts.split(",")]:
        out_dir = Path(args.workdir) / f"editors-{count}"
        devices = ",".join(str(i) for i in range(count)) if args.editors_flag == "gpus" else str(count)
        cmd = [sys.executable, "-m", "orchestrator", "run", *run_args, f"--{args.editors_flag}", devices,
               "--output", str(out_dir), "--progress", "plain"]
        print("$", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd)
        wall = time.perf_counter() - t0
        manifest = json.loads((out_dir / "manifest.json").read_text())
        session = manifest["sessions"][-1]
        edited = session.get("edited", 0)
        row = {"editors": count, "exit_code": proc.returncode, "wall_s": round(wall, 2), **{
            k: session.get(k) for k in ("edited", "edit_failures", "editors_up_s", "editing_s", "editors_down_s",
                                        "scorer_up_s", "swap_s", "scoring_s", "scorer_down_s")}}
        row["edits_per_s"] = edited / session["editing_s"] if session.get("editing_s") else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]["edits_per_s"]
    for row in rows:
        if base and row["edits_per_s"]:
            row["speedup"] = row["edits_per_s"] / base
            row["efficiency"] = row["speedup"] / (row["editors"] / rows[0]["editors"])
    write_json(args.out, {"bench": "scaling", "card": card_name(), "date": time.strftime("%Y-%m-%d"),
                          "git": git_commit(), "command": " ".join(sys.argv), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
