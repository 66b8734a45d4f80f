"""One line per process of a bench/determinism.py result: start, warm-up, compile counters, s/step, edit.

    python bench/det_summary.py $OUT/det.json [...]
    python bench/det_summary.py bench/results/s8/call5-default_cache.json  # dry run (orchestrator)
"""

from __future__ import annotations

import json
import re
import sys


def lines(path: str) -> list[str]:
    result = json.load(open(path))
    out = [f"{path}: identical across processes: {result['all_identical']} classes {result['edit_classes']}"]
    for name, proc in result["processes"].items():
        timings = proc["timings"]
        phases = timings.get("compile_phases") or ""
        tuned = re.search(r"coordinate_descent_tuning\s+([\d.]+)", phases)
        inner = re.search(r"_compile.compile_inner\s+([\d.]+)", phases)
        out.append(
            f"  {name}: {proc.get('compile_cache') or 'no cache'} load {timings['load_s']:.1f}s speed mode "
            f"{timings['speed_mode_s']:.1f}s warm-up {timings['warm_up_s']:.1f}s {timings.get('warm_up_edits')} "
            f"compile_inner {inner.group(1) if inner else '-'}s coordesc {tuned.group(1) if tuned else '-'}s "
            f"s/step {timings['s_per_step_median']:.4f} edit0 {proc['images']['edit0'][:12]} "
            f"repeatable {proc['repeatable_in_process']} counters {proc.get('compile_counters')} "
            f"preload {timings.get('compiler_preload_s', '-')}s (waited {timings.get('compiler_preload_wait_s', '-')}s) "
            f"warm-up imported {(timings.get('warm_up_imported') or {}).get('modules', '-')} modules, "
            f"children {timings.get('child_processes_after_warm_up', '-')} gc {timings.get('warm_up_gc', '-')}")
        for key in ("warm_up_timeline", "edit0_timeline"):
            if timings.get(key):
                line = timings[key]
                out.append(f"    {key}: total {line['total_s']}s {line['by_stage']} other {line['other_s']}s")
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        try:
            print("\n".join(lines(arg)))
        except (OSError, ValueError, KeyError) as exc:
            print(f"{arg}: {type(exc).__name__}: {exc}")
