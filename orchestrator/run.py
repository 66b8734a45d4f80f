"""The whole job, phase by phase: preflight (every problem found before anything starts, at once) →
benchmark → edits (dynamic queue over the editors) → editors to zero → judge → summary and report.
Every phase reads what the one before wrote, so a rerun on the same output dir picks up where a crash
left off, and `score`/`report` re-run single phases.

Exit codes (RunResult.exit_code, RunError.exit_code): EXIT_OK only when every sample was edited and
judged (edited, with `--no-score`); EXIT_SOME_FAILED when some were not (failed, or left by a stop),
EXIT_NONE when none was; EXIT_PREFLIGHT when nothing was started or edited (a problem found before);
1 for any other error. `allow_failures` turns the first two into EXIT_OK where every sample was tried."""

from __future__ import annotations

import time
from functools import partial
from dataclasses import dataclass
from pathlib import Path

from editor_service.client import EditorClient
from scorer_service.client import ScorerClient

from . import api_usage
from . import manifest as mf
from . import preflight, score_direction
from . import ui as ui_lines
from .benchmark import Benchmark, BenchmarkError, Sample
from .config import RunConfig, build_config, client_tls
from .chains import with_inputs
from .dispatch import Dispatcher
from .fleet import Fleet, FleetError, make_fleet
from .results import RunDir, score_key
from .scoring import ScoreItem, Scorer
# The parts of the run in modules of their own; their names stay importable from here.
from .run_exit import (EXIT_ERROR, EXIT_NONE, EXIT_OK, EXIT_PREFLIGHT, EXIT_SOME_FAILED, NothingDone, RunError,
                       exit_status)
from .run_folder import default_output, load_samples, open_run_dir, samples_from_records, settle_protocol
from .run_checks import (_check_adapters, check_run_config, check_running_judge, editors_agree, judge_problems,
                         judges_agree, step_range_problems)
from .run_summary import api_judge_record, current_results, failure_counts, finish, record_api_usage
from .run_plan import _duration, estimate_text, plan_lines, questions_text, recorded_figures


STOP_AFTER_FAILURES = RunConfig.stop_after_failures  # the run config's default (stop_after_failures, config.py)


@dataclass
class RunResult:
    exit_code: int
    summary: dict | None
    run_dir: RunDir | None
    last_line: str = ""  # the count of samples not done, printed last (exit codes 3, 4)


# -- 1. load and preflight ------------------------------------------------------------------
def run_preflight(config: RunConfig, stages: tuple[str, ...]) -> tuple[Benchmark, list[str]]:
    """Everything checked before anything starts, every problem at once (NothingDone, exit 2): the
    models, the GPUs, the image limits, the benchmark (checked against the limit the services take) and
    the protocol against each sample. Returns the benchmark and the warnings for the console."""
    found, limits = preflight.config_findings(config, stages)
    benchmark = None
    try:
        benchmark = load_samples(config, max_pixels=limits.orchestrator(stages))
    except (BenchmarkError, RunError) as exc:
        found.problems.append(str(exc))
    if benchmark is not None:
        out = Path(config.output) if config.output else default_output(benchmark)
        settle_protocol(config, benchmark, RunDir(out).read_manifest())
        found.extend(preflight.sample_findings(config, stages, benchmark.samples, limits))
    if found.problems:
        raise NothingDone(found.problems)
    return benchmark, found.warnings


# -- 2. edit, then editors to zero ----------------------------------------------------------
def edit_phase(config: RunConfig, fleet: Fleet, run_dir: RunDir, manifest: dict, samples: list[Sample],
               todo: list[Sample], ui, session: dict, *, judge_next: bool = False,
               stop_after: int = STOP_AFTER_FAILURES) -> str:
    """judge_next: the score phase follows; a fleet that can stages the judge while editing. stop_after:
    the first this many samples failing for good with the same error stop the editing (0: never).
    Returns why the editing stopped early ("" where it did not: every sample was tried)."""
    count = min(config.editor_count, len(todo))
    ui.print(f"Starting {count} editor(s) ({config.fleet.kind} fleet) for {len(todo)} sample(s)...")
    t0 = time.monotonic()
    endpoints = fleet.start_editors(count)
    session["editors_up_s"] = round(time.monotonic() - t0, 2)
    session["editors"] = len(endpoints)
    ui.print(f"{len(endpoints)} editor(s) SERVING in {session['editors_up_s']:.1f}s: "
             + ", ".join(f"{e.name}={e.address}" for e in endpoints))

    identity, infos = editors_agree(config, fleet, endpoints, todo, run_dir, manifest, ui)
    max_images = identity.get("max_images") or 1
    over = [s.id for s in todo if s.input_count() > max_images]
    if over:  # e.g. KRIS-Bench's multi-element tasks on a single-image model: they count as failed edits
        ui.print(f"Warning: {len(over)} sample(s) have more input images than the editors take ({max_images}, "
                 f"{identity['model'].get('model_class')}); they will be recorded as failed edits: "
                 + ", ".join(over[:5]) + (" ..." if len(over) > 5 else ""))
    manifest["editor"] = identity
    # How each editor started (compiled modes with editor.compile_cache): warm or cold, and the key.
    starts = {name: (info.get("model") or {}).get("runtime", {}).get("compile_cache") for name, info in infos.items()}
    session["editor_compile_cache"] = {name: start for name, start in starts.items() if start}
    manifest["fleet"] = fleet.describe()
    manifest["packages"].update(manifest["fleet"].get("environments", {}))
    run_dir.write_manifest(manifest)
    # Once the editors are up and checked, so that staging does not slow their start (disk, CPU).
    if judge_next and fleet.prestart_scorer():
        ui.print("Staging the judge in host memory while editing (judge.prestart); it takes the GPU once the editors are down")

    ui.start_editing(len(samples), len(samples) - len(todo), [e.name for e in endpoints],
                     api=api_usage.is_api_editor(identity))  # API: a line per request slot, not denoise steps
    t1 = time.monotonic()
    finished: dict = {}
    if any(s.input_from for s in todo):  # a chain's turn whose input was edited (or failed) in an earlier session
        done, failed = run_dir.edit_state(samples)
        finished = {**failed, **done}
    dispatcher = Dispatcher(fleet, endpoints, todo, settings=config.editor, run_dir=run_dir, ui=ui,
                            client_factory=partial(EditorClient, tls=client_tls(config.editor.tls)), identity=identity,
                            stop_after=stop_after, every_sample=samples, finished=finished)
    try:
        outcome = dispatcher.run()
    finally:
        ui.finish_editing()
    session.update(edited=outcome.edited, edit_failures=outcome.failed, editor_restarts=outcome.restarts,
                   editing_s=round(time.monotonic() - t1, 2))
    ui.print(f"Edited {outcome.edited} sample(s) in {session['editing_s']:.1f}s"
             + (f", {outcome.failed} failed" if outcome.failed else "")
             + (f", {outcome.restarts} editor restart(s)" if outcome.restarts else ""))

    # Editors to zero: the judge starts only once every editor process has exited.
    t2 = time.monotonic()
    fleet.stop_editors()
    session["_editors_down"] = time.monotonic()
    session["editors_down_s"] = round(session["_editors_down"] - t2, 2)
    if judge_next and not outcome.remaining and not outcome.stopped:
        fleet.scorer_go()  # at once: what runs until score_phase starts the judge overlaps with its start
    if fleet.stops_services:
        ui.print(f"Editors to zero: all editors stopped and exited in {session['editors_down_s']:.1f}s")
    else:
        ui.print(f"Editors left running ({config.fleet.kind} fleet: stopping them is up to whoever runs them)")
    session["_edits_ended"] = t2
    if outcome.remaining:
        raise RunError(
            f"every editor is gone ({', '.join(outcome.editors_lost)}); {len(outcome.remaining)} sample(s) "
            f"not edited. See {run_dir.logs}/ and rerun the same command to finish."
        )
    if outcome.stopped:
        session["stopped"] = outcome.stopped
        ui.print(f"Editing stopped early: {outcome.stopped}. {len(outcome.not_started)} sample(s) not started, "
                 "nothing judged. Fix it and rerun: --retry-failed redoes the recorded failures (a changed edit "
                 "setting needs another --output); --stop-after-failures 0 never stops.")
    return outcome.stopped


# -- 3. judge ------------------------------------------------------------------------------
def score_phase(config: RunConfig, fleet: Fleet, run_dir: RunDir, manifest: dict, samples: list[Sample],
                ui, session: dict, *, retry_failed: bool, stop_after: int = STOP_AFTER_FAILURES) -> str:
    """stop_after: the first this many judgements INVALID for one reason stop the judging (0: never).
    Returns why the judging stopped early ("" where it did not)."""
    done, _ = run_dir.edit_state(samples)
    samples = with_inputs(samples, run_dir.edit_path, done)  # a chain's turn is judged against the edit it edited
    repeats = config.judge.repeats
    keep = run_dir.score_state(done, retry_failed=retry_failed, repeats=repeats)
    # (sample, repeat) by score key; with one repeat the keys are the sample ids
    wanted = {score_key(s.id, r): (s, r) for s in samples if s.id in done for r in range(repeats)}
    todo_ids = [key for key in wanted if key not in keep]
    if not todo_ids:
        ui.print(f"Judging: nothing to do ({len(keep)} sample(s) already scored)")
        return ""
    t0 = time.monotonic()
    ui.print(f"Starting the judge ({config.judge.model or config.fleet.kind + ' fleet'}) for {len(todo_ids)} sample(s)...")
    replicas = config.judge_replicas
    scorers = fleet.start_scorers(replicas)
    serving = time.monotonic()
    # From the moment the editors were down (a staged judge got its go signal then), else from here.
    session["scorer_up_s"] = round(serving - session.get("_editors_down", t0), 2)
    mode = fleet.scorer_start_mode()
    if mode:
        session["scorer_start"] = mode
    if mode.startswith("normal start: the staged judge failed"):
        ui.print(f"warning: {mode}")
    swap = ""
    if "_edits_ended" in session:
        session["swap_s"] = round(serving - session["_edits_ended"], 2)
        swap = f"; swap (last edit -> judge SERVING) {session['swap_s']:.1f}s"
    ui.print(f"Judge SERVING at {', '.join(e.address for e in scorers)} in {session['scorer_up_s']:.1f}s"
             + (" from editors down" if "_editors_down" in session else "")
             + (" (staged while editing)" if mode == "staged" else "") + swap)

    info = judges_agree(config, fleet, scorers)
    protocol_name = config.judge.protocol or info["default_protocol"]
    protocol = {"name": protocol_name, **info["protocols"][protocol_name]}
    judge_hash = info["model"]["content_hash"]
    manifest["judge"] = {
        "model": info["model"],
        "protocol": protocol,
        "max_batch_size": info["max_batch_size"],
        "max_wait_s": info["max_wait_s"],
        "backend": info["model"]["runtime"].get("backend", "transformers"),
        "replicas": {e.name: e.address for e in scorers},
        **api_judge_record(info, (manifest.get("judge") or {}).get("api")),
    }
    manifest["protocol_sha256"] = protocol.get("sha256")
    run_dir.write_manifest(manifest)

    # Scores made by another judge build or another protocol text are not kept: judge them again.
    current = {i: k for i, k in keep.items()
               if k.get("judge_hash") == judge_hash and k.get("protocol_hash") == protocol.get("sha256")}
    redo = [i for i in keep if i not in current]
    todo_ids += [i for i in redo if i not in todo_ids]
    if redo:
        ui.print(f"Judging again {len(redo)} sample(s) scored by another judge build or protocol text")

    items = [ScoreItem(index=n, sample=wanted[k][0], edit=done[wanted[k][0].id], edit_path=run_dir.edit_path(wanted[k][0]),
                       repeat=wanted[k][1], repeats=repeats)
             for n, k in enumerate(todo_ids)]
    batch = config.judge.max_batch
    ui.print(f"{ui_lines.judge_tag(config.judge.backend)} {len(items)} image(s), protocol {protocol_name}, batch size {batch}"
             + (f", {repeats} judgements of each edit" if repeats > 1 else "")
             + (f", {len(scorers)} judge replicas" if len(scorers) > 1 else ""))

    def restart(endpoint):
        replaced = fleet.restart_scorer(endpoint)
        return replaced.address if replaced is not None else None

    # requests on the stream at once: enough to keep the device batches (or the API's requests) full
    concurrency = batch if config.judge.backend == "transformers" else config.judge.max_concurrency
    metrics, score_label = score_direction.console_metrics(config.judge, protocol)  # a metrics run's lines: its values
    scorer = Scorer(run_dir=run_dir, ui=ui, protocol=protocol_name, batch_size=batch,
                    max_in_flight=config.judge.max_in_flight or 4 * concurrency, max_attempts=config.judge.max_attempts,
                    client_factory=partial(ScorerClient, tls=client_tls(config.judge.tls)), restart=restart, judge_hash=judge_hash,
                    stall_timeout_s=config.judge.stall_timeout_s, stop_after=stop_after,
                    questions=question_names(config, protocol), metrics=metrics, score_label=score_label)
    t1 = time.monotonic()
    try:
        outcome = scorer.run(scorers, items)
    finally:
        if "api" in manifest["judge"]:
            session["judge_tokens"] = dict(scorer.tokens)
            record_api_usage(manifest, run_dir, samples)
    session.update(scored=outcome.scored, score_failures=outcome.failed, scoring_s=round(time.monotonic() - t1, 2),
                   scorer_restarts=outcome.restarts, judge_replicas=len(scorers))
    t2 = time.monotonic()
    fleet.stop_scorer()
    session["scorer_down_s"] = round(time.monotonic() - t2, 2)
    if outcome.stopped:
        session["stopped"] = outcome.stopped
        ui.print(f"Judging stopped early: {outcome.stopped}. {len(outcome.unscored)} sample(s) not judged. Fix it and "
                 "rerun: --retry-failed judges the INVALID ones again; --stop-after-failures 0 never stops.")
        return outcome.stopped
    if outcome.unscored:
        raise RunError(f"the judge kept failing; {len(outcome.unscored)} sample(s) not scored. "
                       f"See {run_dir.logs}/scorer.log and rerun the same command to finish.")
    return ""


def question_names(config: RunConfig, protocol: dict):
    """(Sample) -> the questions the judge asks of it, where the judge's protocol is the file of that name
    here (the same sha256); None where it is not known here."""
    local = preflight.find_protocol(config.judge)
    if local is None or local.sha256 != protocol.get("sha256"):
        return None
    return partial(preflight.asked_questions, local)


# -- the whole job: preflight -> run folder -> edit -> judge -> summary and report -----------
def execute(config: RunConfig, *, stages=("edit", "score"), retry_failed: bool = False, ui,
            edits_from: Path | None = None, extra_manifest: dict | None = None, dry_run: bool = False,
            allow_failures: bool = False, stop_after_failures: int = STOP_AFTER_FAILURES) -> RunResult:
    """dry_run: the preflight and the plan, nothing started or written. allow_failures: exit 0 where
    every sample was tried, whatever failed. stop_after_failures: the first this many samples failing
    for good with the same error stop the editing, or the judging (0: never)."""
    stages = tuple(stages)
    # 1. load and preflight (a dry run: the plan, and no more)
    benchmark, warnings = run_preflight(config, stages)
    samples = benchmark.samples
    if dry_run:
        for line in plan_lines(config, benchmark, stages, warnings, retry_failed=retry_failed, edits_from=edits_from):
            ui.print(line)
        return RunResult(EXIT_OK, None, None)
    # the output folder: opened, or reopened to resume (run_folder.py)
    run_dir, manifest = open_run_dir(config, benchmark, edits_from=edits_from, extra=extra_manifest,
                                     judging="score" in stages)
    session = manifest["sessions"][-1]
    ui.print(f"Benchmark {benchmark.path} ({benchmark.format}): {len(samples)} sample(s) in "
             f"{len(benchmark.categories)} categories; output {run_dir.path}")
    for warning in warnings:
        ui.print(f"Warning: {warning}")
    fleet = None
    status = "failed"
    try:
        fleet = make_fleet(config, run_dir.logs)
        stopped = ""
        if "edit" in stages:  # 2. edit, then editors to zero
            done, failed = run_dir.edit_state(samples, retry_failed=retry_failed)
            todo = [s for s in samples if s.id not in done and s.id not in failed]
            if done or failed:
                ui.print(f"Resuming: {len(done)} edit(s) done, {len(failed)} recorded failure(s) kept"
                         + (" (use --retry-failed to redo them)" if failed else "") + f", {len(todo)} to edit")
            if todo:
                if "score" in stages:
                    check_running_judge(config, fleet, ui)
                stopped = edit_phase(config, fleet, run_dir, manifest, samples, todo, ui, session,
                                     judge_next="score" in stages, stop_after=stop_after_failures)
        if "score" in stages and not stopped:  # 3. judge
            stopped = score_phase(config, fleet, run_dir, manifest, samples, ui, session, retry_failed=retry_failed,
                                  stop_after=stop_after_failures)
        # 4. summary and report (run_summary.py), the exit status (run_exit.py)
        judged = "score" in stages
        title = (f"{ui_lines.judge_tag(config.judge.backend)} Completed!" if judged and not stopped else
                 "Summary (stopped early)" if stopped else "Summary (edits only, not judged yet)")
        summary = finish(config, run_dir, manifest, samples, ui, title=title)
        status = "stopped" if stopped else "complete" if summary["complete"] else "incomplete"
        ui.print(f"Report: {run_dir.report_path}")
        code, last = exit_status(summary, stages, stopped=stopped, allow_failures=allow_failures,
                                 counts=failure_counts(run_dir, samples))
        session["exit_code"] = code
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        try:
            if fleet is not None:
                fleet.close()
        finally:  # the session is closed in the manifest even when stopping the services fails
            session.pop("_edits_ended", None)
            session.pop("_editors_down", None)
            session.update(finished=mf.now(), status=status)
            run_dir.write_manifest(manifest)
    if last:
        ui.print(last)  # last of all, after the services are down: what a script reads
    return RunResult(code, summary, run_dir, last)


# -- the report alone (`orchestrator report`), from a run folder -----------------------------
def config_from_run_dir(run_dir: Path) -> tuple[RunConfig, dict]:
    manifest = RunDir(run_dir).read_manifest()
    if manifest is None:
        raise RunError(f"{run_dir} has no manifest.json: not an output dir of `orchestrator run`")
    data = dict(manifest.get("config") or {})
    data["_origin"] = str(RunDir(run_dir).manifest_path)
    return build_config(data), manifest


def rebuild_report(path: Path, ui) -> dict:
    config, manifest = config_from_run_dir(path)
    edits_from = Path(manifest["rejudge_of"]) if manifest.get("rejudge_of") else None
    run_dir = RunDir(path, edits_from=edits_from)
    try:
        samples = load_samples(config).samples
    except (BenchmarkError, RunError) as exc:
        ui.print(f"note: benchmark not readable ({str(exc).splitlines()[0]}); report without source images")
        samples = samples_from_records(run_dir)
    summary = finish(config, run_dir, manifest, samples, ui)
    ui.print(f"Report: {run_dir.report_path}")
    return summary


__all__ = ["RunError", "execute", "rebuild_report", "config_from_run_dir", "FleetError"]
