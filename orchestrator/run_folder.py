"""The run's benchmark and output folder: the samples loaded, the folder opened or reopened (refusing
results made with other settings, the earlier sessions settled), the judge protocol named in full, and
the samples read back from the records where the benchmark is gone."""

from __future__ import annotations

from pathlib import Path

from editfleet_common.images import DEFAULT_MAX_PIXELS

from . import manifest as mf
from .benchmark import Benchmark, Sample, load_benchmark, suite_of
from .config import RunConfig, protocol_reply_budget
from .results import RunDir, latest_by_id
from .run_exit import RunError


def load_samples(config: RunConfig, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Benchmark:
    """max_pixels: the largest image the run takes (preflight.Limits.orchestrator: what its services take)."""
    b = config.benchmark
    if not b.path:
        raise RunError("no benchmark given (benchmark.path in the config, or --benchmark)")
    return load_benchmark(b.path, b.format, categories=b.categories, limit=b.limit,
                          options={"language": b.language, "image_root": b.image_root}, max_pixels=max_pixels)


def default_output(benchmark: Benchmark) -> Path:
    return Path("runs") / benchmark.path.stem


def settle_protocol(config: RunConfig, benchmark: Benchmark, prior: dict | None) -> None:
    """Name the run's judge protocol in full (never left to the judge's default): the one the run
    names; else the one earlier sessions of this run folder used where they recorded none by name
    (folders written before a suite chose its protocol); else the suite's own default. The reply
    budget follows the protocol unless the run names one."""
    if config.judge.protocol:
        return
    earlier = ((prior or {}).get("judge_settings") or {}).get("protocol")
    used = (((prior or {}).get("judge") or {}).get("protocol") or {}).get("name")
    suite = suite_of(benchmark.format)
    config.judge.protocol = used if earlier == "" and used else (suite.default_protocol if suite else "")
    if config.judge.max_new_tokens is None:
        config.judge.max_new_tokens = protocol_reply_budget(config.judge)



def open_run_dir(config: RunConfig, benchmark: Benchmark, *, edits_from: Path | None = None,
                 extra: dict | None = None, judging: bool = True) -> tuple[RunDir, dict]:
    """Create or reopen the output dir; refuse to mix results made with other settings.

    judging: this session judges. The judge settings bind a dir only once it holds scores, and only
    a session that judges: `run --no-score` (no judge needed) then `run --judge-model J` is fine.
    """
    out = Path(config.output) if config.output else default_output(benchmark)
    run_dir = RunDir(out, edits_from=edits_from).create()
    prior = run_dir.read_manifest()
    settle_protocol(config, benchmark, prior)
    if prior is not None and (prior.get("judge_settings") or {}).get("protocol") == "":
        # written before protocols were named in full: "" was the judge's default, recorded in "judge"
        used = ((prior.get("judge") or {}).get("protocol") or {}).get("name")
        prior = {**prior, "judge_settings": {**prior["judge_settings"], "protocol": used or ""}}
    judge_bound = judging and prior is not None and bool(run_dir.scores.read())
    if prior is not None:
        for key, current, hint in (
            ("edit_settings", config.edit_settings(), "use another --output, or the same edit settings"),
            ("judge_settings", config.judge_settings(),
             "use another --output, or re-judge the edits with `orchestrator score`"),
        ):
            if edits_from is not None and key == "edit_settings":
                continue
            if key == "judge_settings" and not judge_bound:
                continue
            diffs = mf.differences(prior.get(key) or {}, current)
            if diffs:
                raise RunError(
                    f"{run_dir.path} was made with other {key.replace('_', ' ')} ({'; '.join(diffs)}): {hint}"
                )
    manifest = dict(prior or {})
    manifest.update({
        "editfleet_manifest": 1,
        "created": (prior or {}).get("created") or mf.now(),
        "updated": mf.now(),
        "command": mf.command_line(),
        "config": config.to_dict(),
        "edit_settings": config.edit_settings(),
        "judge_settings": (config.judge_settings() if judging or not (prior or {}).get("judge_settings")
                           else prior["judge_settings"]),
        "seed_derivation": "sha256(f'{base_seed}:{sample_id}')[:8] big-endian, & (2**63-1)",
        "benchmark": benchmark.describe(),
        "git": mf.git_state(),
        # service environments are added by the fleet when services start (kept from earlier sessions)
        "packages": {**(prior or {}).get("packages", {}), "orchestrator": mf.orchestrator_packages()},
        "host": mf.host(),
        "devices": {"gpus": config.devices.gpus, "editors": config.editor_count, "judge_gpu": config.devices.judge_gpu},
        **(extra or {}),
    })
    if prior and prior.get("benchmark", {}).get("sha256") not in (None, benchmark.sha256):
        manifest.setdefault("notes", []).append(f"{mf.now()}: the benchmark file changed since the first session")
    mf.settle_sessions(manifest)  # an earlier session left "running" by a process killed outright: "interrupted"
    manifest.setdefault("sessions", []).append(mf.new_session())
    run_dir.write_manifest(manifest)
    return run_dir, manifest



def samples_from_records(run_dir: RunDir) -> list[Sample]:
    # The edit line last: it is the one edit_state() checks the instruction of.
    records = {**latest_by_id(run_dir.scores.read()), **latest_by_id(run_dir.edits.read())}
    return [Sample(id=r["id"], category=r.get("category", ""), instruction=r.get("instruction", ""))
            for r in records.values()]

