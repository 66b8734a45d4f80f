"""The plan `run --dry-run` prints, without starting or writing anything: the samples, the output
folder's state, the editors, the judge and its protocol, the questions asked, a time estimate from the
figures earlier sessions recorded."""

from __future__ import annotations

from pathlib import Path

from . import manifest as mf
from . import preflight
from .benchmark import Benchmark, Sample
from .config import RunConfig
from .results import ResultsError, RunDir
from .run_folder import default_output


def plan_lines(config: RunConfig, benchmark: Benchmark, stages: tuple[str, ...], warnings: list[str], *,
               retry_failed: bool = False, edits_from: Path | None = None) -> list[str]:
    """What `run` would do, without starting or writing anything: the samples and categories, the output
    folder's state, the editors, the judge and its protocol, the questions asked per sample, a time
    estimate from the figures recorded by earlier sessions (this folder's, and its sibling folders' with
    the same settings)."""
    samples = benchmark.samples
    out = Path(config.output) if config.output else default_output(benchmark)
    run_dir = RunDir(out, edits_from=edits_from)
    e, j = config.editor, config.judge
    cats = ", ".join(f"{c} {n}" for c, n in benchmark.describe()["categories"].items())
    lines = ["Plan (dry run: nothing was started or written)",
             f"  benchmark   {benchmark.path} ({benchmark.format}): {len(samples)} sample(s) in "
             f"{len(benchmark.categories)} categories: {cats}"]
    done, failed = run_dir.edit_state(samples, retry_failed=retry_failed) if run_dir.edits.path.exists() else ({}, {})
    to_edit = [s for s in samples if s.id not in done and s.id not in failed] if "edit" in stages else []
    kept = run_dir.score_state(done, retry_failed=retry_failed, repeats=j.repeats) if run_dir.scores.path.exists() else {}
    judging = len([s for s in samples if s.id not in failed]) * j.repeats - len(kept) if "score" in stages else 0
    state = (f"resuming: {len(done)} edit(s) done, {len(failed)} failure(s) kept, {len(to_edit)} to edit"
             + (f"; {len(kept)} judgement(s) kept, {judging} to judge" if "score" in stages else "")
             if done or failed or kept else "new")
    lines.append(f"  output      {out} ({state})")
    fleet = config.fleet
    if "edit" in stages:
        where = (f"at {', '.join(fleet.editor_addresses)} (static fleet)" if fleet.kind == "static" else
                 f"on GPUs {','.join(map(str, config.devices.gpus))} ({fleet.kind} fleet)" if config.devices.gpus else
                 f"on the CPU ({fleet.kind} fleet)")
        size = f"{e.width}x{e.height}" if e.width else "the pipeline's own size"
        if config.api_editor:  # request slots of one API editor process, not devices (docs/api-editors.md)
            where = (f"request slots of an API editor ({e.backend}, provider {e.provider or 'the default'}, "
                     f"{e.base_url})")
            size = f"{e.width}x{e.height}" if e.width else "the provider's own size"
        lines.append(f"  editors     {config.editor_count} {where}: {e.model or 'the model the editors run'}; "
                     f"steps {e.steps or 'default'}, guidance {'default' if e.guidance is None else e.guidance}, "
                     f"{size}, base seed {e.seed}")
    if "score" in stages:
        gpus = [g for i in range(config.judge_replicas) for g in (config.judge_replica_gpus(i) or [])]
        judge_where = (f"at {fleet.scorer_address} (static fleet)" if fleet.kind == "static" else
                       "an API endpoint " + str(j.base_url) if j.backend == "openai" else
                       f"{config.judge_replicas} replica(s) on "
                       + (f"GPU(s) {','.join(map(str, gpus))}" if gpus else "the CPU") + f" ({fleet.kind} fleet)")
        lines.append(f"  judge       {j.model or 'the model the judge runs'} ({j.backend}), {judge_where}, batch {j.max_batch}")
        lines.append(f"  protocol    {j.protocol}: " + questions_text(config, samples))
    lines += [f"  warning     {w}" for w in warnings]
    lines.append("  estimate    " + estimate_text(config, stages, out, len(to_edit), max(judging, 0)))
    return lines


def questions_text(config: RunConfig, samples: list[Sample]) -> str:
    """The questions asked of each sample, grouped: "2 (SC, PQ) of 8 sample(s); 1 (SC) of 2"."""
    protocol = preflight.find_protocol(config.judge)
    if protocol is None:
        return "not known here (the judge's own file)"
    groups: dict[tuple[str, ...], int] = {}
    for sample in samples:
        names = tuple(preflight.asked_questions(protocol, sample))
        groups[names] = groups.get(names, 0) + 1
    return "; ".join(f"{len(names)} question(s) ({', '.join(names)}) for {n} sample(s)" for names, n in groups.items())


def recorded_figures(config: RunConfig, out: Path) -> dict[str, list[float]]:
    """Seconds per sample for one editor / one judge replica and start-up times, from the sessions of
    this output folder and of its sibling folders run with the same settings on the same kind of device."""
    figures: dict[str, list[float]] = {"edit": [], "judge": [], "editors_up": [], "judge_up": []}
    folders = [out] + (sorted(p for p in out.parent.iterdir() if p.is_dir() and p != out)[:200]
                       if out.parent.is_dir() else [])
    for folder in folders:
        try:
            manifest = RunDir(folder).read_manifest()
        except ResultsError:
            continue
        if not manifest:
            continue
        same_device = bool((manifest.get("devices") or {}).get("gpus")) == bool(config.devices.gpus)
        same_edits = same_device and mf.differences(manifest.get("edit_settings") or {}, config.edit_settings()) == []
        same_judge = mf.differences(manifest.get("judge_settings") or {}, config.judge_settings()) == []
        for session in manifest.get("sessions") or []:
            edited = (session.get("edited") or 0) + (session.get("edit_failures") or 0)
            if same_edits and edited and session.get("editing_s"):
                editors = session.get("editors") or (manifest.get("devices") or {}).get("editors") or 1
                figures["edit"].append(session["editing_s"] * editors / edited)
                if session.get("editors_up_s"):
                    figures["editors_up"].append(session["editors_up_s"])
            judged = (session.get("scored") or 0) + (session.get("score_failures") or 0)
            if same_judge and judged and session.get("scoring_s"):
                figures["judge"].append(session["scoring_s"] * (session.get("judge_replicas") or 1) / judged)
                if session.get("scorer_up_s"):
                    figures["judge_up"].append(session["scorer_up_s"])
    return figures


def estimate_text(config: RunConfig, stages: tuple[str, ...], out: Path, to_edit: int, to_judge: int) -> str:
    figures = recorded_figures(config, out)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    parts, total, missing = [], 0.0, []
    if "edit" in stages and to_edit:
        if figures["edit"]:
            editing = to_edit * mean(figures["edit"]) / max(1, min(config.editor_count, to_edit))
            up = mean(figures["editors_up"]) if figures["editors_up"] else 0.0
            total += editing + up
            parts.append(f"editing {_duration(editing)} ({mean(figures['edit']):.1f}s per sample per editor"
                         + (f", start-up {_duration(up)}" if up else "") + ")")
        else:
            missing.append("editing")
    if "score" in stages and to_judge:
        if figures["judge"]:
            judging = to_judge * mean(figures["judge"]) / max(1, config.judge_replicas)
            up = mean(figures["judge_up"]) if figures["judge_up"] else 0.0
            total += judging + up
            parts.append(f"judging {_duration(judging)} ({mean(figures['judge']):.2f}s per sample per replica"
                         + (f", start-up {_duration(up)}" if up else "") + ")")
        else:
            missing.append("judging")
    if not to_edit and not to_judge:
        return "nothing left to do"
    text = f"about {_duration(total)}: " + "; ".join(parts) if parts else ""
    if missing:
        text += ("; " if text else "") + (f"no recorded figures for {' and '.join(missing)} with these settings "
                                          f"(in {out} or the folders beside it): a first session records them")
    return text


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"

