"""The whole job, phase by phase: preflight (every problem found before anything starts, at once) →
benchmark → edits (dynamic queue over the editors) → editors to zero → judge → summary and report.
Every phase reads what the one before wrote, so a rerun on the same output dir picks up where a crash
left off, and `score`/`report` re-run single phases.

Exit codes (RunResult.exit_code, RunError.exit_code): EXIT_OK only when every sample was edited and
judged (edited, with `--no-score`); EXIT_SOME_FAILED when some were not (failed, or left by a stop),
EXIT_NONE when none was; EXIT_PREFLIGHT when nothing was started or edited (a problem found before);
1 for any other error. `allow_failures` turns the first two into EXIT_OK where every sample was tried."""

from __future__ import annotations

import dataclasses
import json
import time
from functools import partial
from dataclasses import dataclass
from pathlib import Path


from editfleet_common import settings, statuses
from editfleet_common.channels import ServiceError
from editfleet_common.images import DEFAULT_MAX_PIXELS
from editor_service.client import EditorClient
from scorer_service.client import ScorerClient, info_to_dict

from . import api_usage
from . import manifest as mf
from . import preflight, score_direction, suite_headline
from . import ui as ui_lines
from .benchmark import Benchmark, BenchmarkError, Sample, headline, load_benchmark, suite_of
from .config import RunConfig, build_config, client_tls, protocol_reply_budget
from .chains import with_inputs
from .dispatch import Dispatcher
from .fleet import Fleet, FleetError, make_fleet
from .identity import DifferentModel, environment_warning, model_mismatch, same_identity_everywhere
from .report import write_report
from .results import (ResultsError, RunDir, judge_tokens, latest_by_id, made_for, score_key, summarize,
                      write_json_atomic)
from .scoring import ScoreItem, Scorer
from .tables import write_tables


EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PREFLIGHT = 2     # nothing was started (or edited): every problem found before is listed
EXIT_SOME_FAILED = 3   # some samples were not edited and judged: failed, or left by a stop
EXIT_NONE = 4          # no sample was judged (edited, with --no-score)
STOP_AFTER_FAILURES = RunConfig.stop_after_failures  # the run config's default (stop_after_failures, config.py)


class RunError(Exception):
    """Stops the run with a message for the user (no traceback); `exit_code` says how it ended."""

    exit_code = EXIT_ERROR


class NothingDone(RunError):
    """Problems found before the first edit (preflight, or the services' identities and ranges once
    they are up): every one listed, nothing edited."""

    exit_code = EXIT_PREFLIGHT

    def __init__(self, problems: list[str] | str, lead: str = "nothing was started"):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(preflight.PreflightError(self.problems, lead).message())


@dataclass
class RunResult:
    exit_code: int
    summary: dict | None
    run_dir: RunDir | None
    last_line: str = ""  # the count of samples not done, printed last (exit codes 3, 4)


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


# -- manifest ---------------------------------------------------------------------------------
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


def check_run_config(fleet: Fleet, run_settings, section, info: dict, name: str) -> None:
    """Where the fleet's services take their flags from elsewhere (Kubernetes: the StatefulSets), refuse
    services that do not run what the run config says, naming the field."""
    if not fleet.checks_run_config:
        return
    problems = settings.mismatches(run_settings, section, info, name)
    if problems:
        raise RunError(f"the {name} does not run what the run config says: " + "; ".join(problems)
                       + " (change the run config or the StatefulSet's args)")


# -- phases -----------------------------------------------------------------------------------
def step_range_problems(config: RunConfig, identity: dict, todo: list[Sample]) -> list[str]:
    """Step counts the editors refuse (their GetInfo defaults: --min-steps, --max-steps): the run's, and
    any sample's own (native extras num_inference_steps)."""
    defaults = identity.get("defaults") or {}
    low, high = int(defaults.get("min_steps") or 0), int(defaults.get("max_steps") or 0)
    if not low and not high:
        return []
    model_class = (identity.get("model") or {}).get("model_class") or "the editors"
    bounds = f"{low} to {high}" if high else f"at least {low}"
    outside = lambda n: n and (n < low or (high and n > high))  # noqa: E731 - 0: the editor's own default
    problems = []
    if outside(config.editor.steps):
        problems.append(f"editor.steps {config.editor.steps} (--steps): the editors ({model_class}) run {bounds} "
                        "steps (their --min-steps / --max-steps); every edit would be refused")
    own = [s.id for s in todo if isinstance(s.edit_args.get("num_inference_steps"), int)
           and outside(s.edit_args["num_inference_steps"])]
    if own:
        problems.append(f"{len(own)} sample(s) ask for a step count outside {bounds} (their own num_inference_steps): "
                        + ", ".join(own[:preflight.SHOWN]) + (", ..." if len(own) > preflight.SHOWN else ""))
    return problems


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

    infos = {}
    for endpoint in endpoints:
        with EditorClient(endpoint.address, tls=client_tls(config.editor.tls)) as client:
            try:
                infos[endpoint.name] = dataclasses.asdict(client.info())
            except ServiceError as exc:
                raise RunError(f"editor {endpoint.name} at {endpoint.address}: GetInfo failed: {exc}") from None
    try:
        identity, environment_differs = same_identity_everywhere(infos, "editor")
    except DifferentModel as exc:
        raise RunError(str(exc)) from None
    check_run_config(fleet, settings.API_EDITOR_SETTINGS if config.api_editor else settings.EDITOR_SETTINGS,
                     config.editor, identity, "editor")
    # The model the run is labelled with is the one the editors run, and the steps are ones they take.
    problems = [p for p in [model_mismatch(config.editor.model, identity["model"], "editor", endpoints[0].address)] if p]
    problems += step_range_problems(config, identity, todo)
    if problems:
        raise NothingDone(problems, lead="nothing was edited")
    if environment_differs:
        ui.print("Warning: " + environment_warning(environment_differs, "the editors differ"))
        manifest["editor_environment_differs"] = environment_differs
    else:
        manifest.pop("editor_environment_differs", None)
    prior_hash = (manifest.get("editor") or {}).get("model", {}).get("content_hash")
    if prior_hash and prior_hash != identity["model"].get("content_hash"):
        raise RunError(
            f"the editor model differs from the one {run_dir.path} was made with "
            f"(content hash {prior_hash} -> {identity['model'].get('content_hash')}); use another --output"
        )
    _check_adapters(config, manifest, identity, run_dir)
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


def judge_problems(config: RunConfig, info: dict, address: str) -> list[str]:
    """The judge a service runs is the one the run config names, and has the run's protocol."""
    problems = [p for p in [model_mismatch(config.judge.model, info["model"], "judge", address)] if p]
    protocol_name = config.judge.protocol or info["default_protocol"]
    if protocol_name not in info["protocols"]:
        problems.append(f"the judge at {address} has no protocol {protocol_name!r} (it has: {', '.join(info['protocols'])}; "
                        "start it with --suites-dir / --protocols-dir, or name one of these with --protocol)")
    return problems


def check_running_judge(config: RunConfig, fleet: Fleet, ui) -> None:
    """A judge that is already serving (a static fleet's) is asked before any edit whether it runs the
    judge the config names and has the run's protocol; one that does not answer now is asked later."""
    endpoint = fleet.running_scorer()
    if endpoint is None:
        return
    try:
        with ScorerClient(endpoint.address, tls=client_tls(config.judge.tls)) as client:
            info = info_to_dict(client.info(timeout=10))
    except ServiceError as exc:
        ui.print(f"note: the judge at {endpoint.address} did not answer before editing ({exc}); it is checked when judging")
        return
    problems = judge_problems(config, info, endpoint.address)
    if problems:
        raise NothingDone(problems, lead="nothing was edited")


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

    infos = {}
    for endpoint in scorers:
        with ScorerClient(endpoint.address, tls=client_tls(config.judge.tls)) as client:
            try:
                infos[endpoint.name] = info_to_dict(client.info())
            except ServiceError as exc:
                raise RunError(f"judge at {endpoint.address}: GetInfo failed: {exc}") from None
        check_run_config(fleet, settings.judge_settings(config.judge.backend), config.judge, infos[endpoint.name], "judge")
    info = infos[scorers[0].name]
    for name, other in infos.items():  # one judge, however many replicas: the same model and protocols
        if (other["model"]["content_hash"], other["protocols"]) != (info["model"]["content_hash"], info["protocols"]):
            raise RunError(f"judge replica {name} runs another model or other protocols than {scorers[0].name} "
                           f"({other['model']['content_hash']} vs {info['model']['content_hash']})")
    problems = judge_problems(config, info, scorers[0].address)
    if problems:
        raise NothingDone(problems, lead="nothing was judged")
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


def api_judge_record(info: dict, prior: dict | None) -> dict:
    """The manifest's record of an API judge (none for a local one): endpoint host, the model as asked
    for and as the server reports it, system fingerprints; filled in by record_api_usage."""
    runtime = info["model"]["runtime"]
    if runtime.get("backend") != "openai":
        return {}
    prior = prior or {}
    served = [m for m in [runtime.get("served_model", "")] if m]
    fingerprints = [f for f in [runtime.get("system_fingerprint", "")] if f]
    return {"api": {
        "endpoint_host": runtime.get("endpoint_host", ""),
        "model_requested": info["model"]["model"],
        "served_models": sorted(set(prior.get("served_models", [])) | set(served)),
        "system_fingerprints": sorted(set(prior.get("system_fingerprints", [])) | set(fingerprints)),
        "tokens": prior.get("tokens", {"prompt": 0, "completion": 0, "per_sample": {}}),
    }}


def record_api_usage(manifest: dict, run_dir: RunDir, samples: list[Sample]) -> None:
    """Tokens per sample and in total over the run dir's current scores, and every model name and
    system_fingerprint the endpoint answered with."""
    api = manifest["judge"]["api"]
    _, scores = current_results(run_dir, samples)
    per_sample = {i: {"prompt": int(r.get("prompt_tokens") or 0), "completion": int(r.get("completion_tokens") or 0)}
                  for i, r in sorted(scores.items())}
    totals = judge_tokens(scores)
    api["tokens"] = {**totals, "per_sample": per_sample}
    for record in scores.values():
        for key, field in (("served_models", "served_model"), ("system_fingerprints", "system_fingerprint")):
            for value in filter(None, (record.get(field) or "").split(",")):
                if value not in api[key]:
                    api[key] = sorted([*api[key], value])
    run_dir.write_manifest(manifest)


# -- results ------------------------------------------------------------------------------------
def current_results(run_dir: RunDir, samples: list[Sample]) -> tuple[dict, dict]:
    """The latest edit line per sample (valid image or failure) and the score of that very edit."""
    latest = latest_by_id(run_dir.edits.read())
    done, _ = run_dir.edit_state(samples)
    current = {s.id: s for s in samples}
    edits = {i: r for i, r in latest.items()
             if i in done or (r.get("status") == "failed" and (i not in current or made_for(r, current[i])))}
    edits.update(done)
    return edits, run_dir.current_scores(done)


def finish(config: RunConfig, run_dir: RunDir, manifest: dict, samples: list[Sample], ui,
           *, title: str = "Summary") -> dict:
    edits, scores = current_results(run_dir, samples)
    samples = with_inputs(samples, run_dir.edit_path, edits)  # a chain's turn: its input shown is the edit it edited
    summary = summarize(samples, edits, scores, failures_as=config.judge.failures,
                        headline=headline((manifest.get("benchmark") or {}).get("format")))
    summary["run"] = {"output": str(run_dir.path), "editor": config.editor.model, "judge": config.judge.model,
                      "protocol": ((manifest.get("judge") or {}).get("protocol") or {}).get("name")}
    summary["score"] = score_direction.of_run(config, manifest).describe()  # its name and which way is better
    if api_usage.is_api_editor(manifest.get("editor")):  # requests, retries, refusals, usage, cost; the seed's note
        summary["editor_api"] = manifest["editor_api"] = api_usage.totals(run_dir.edits.read(), manifest["editor"])
    block = suite_headline.headline((manifest.get("benchmark") or {}).get("format"), summary["run"]["protocol"],
                            samples, edits, scores, failures_as=config.judge.failures)
    missing = suite_headline.absent((manifest.get("benchmark") or {}).get("format"), summary["run"]["protocol"])
    if block:
        summary["suite"] = block
    if missing:
        summary["suite_absent"] = missing
    write_json_atomic(run_dir.summary_path, summary)
    write_tables(run_dir, samples, edits, scores, summary)
    write_report(run_dir, samples, edits, scores, summary, manifest)
    ui.print(ui_lines.summary_block(summary, title))
    ui.print(ui_lines.category_table(summary))
    if block:
        ui.print(suite_headline.console(block))
    if missing:
        ui.print(missing["why"])
    ui.print(ui_lines.RULE)
    return summary


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


def execute(config: RunConfig, *, stages=("edit", "score"), retry_failed: bool = False, ui,
            edits_from: Path | None = None, extra_manifest: dict | None = None, dry_run: bool = False,
            allow_failures: bool = False, stop_after_failures: int = STOP_AFTER_FAILURES) -> RunResult:
    """dry_run: the preflight and the plan, nothing started or written. allow_failures: exit 0 where
    every sample was tried, whatever failed. stop_after_failures: the first this many samples failing
    for good with the same error stop the editing, or the judging (0: never)."""
    stages = tuple(stages)
    benchmark, warnings = run_preflight(config, stages)
    samples = benchmark.samples
    if dry_run:
        for line in plan_lines(config, benchmark, stages, warnings, retry_failed=retry_failed, edits_from=edits_from):
            ui.print(line)
        return RunResult(EXIT_OK, None, None)
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
        if "edit" in stages:
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
        if "score" in stages and not stopped:
            stopped = score_phase(config, fleet, run_dir, manifest, samples, ui, session, retry_failed=retry_failed,
                                  stop_after=stop_after_failures)
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


def failure_counts(run_dir: RunDir, samples: list[Sample]) -> dict[str, int]:
    """How many samples ended how, other than OK: edit failures, then each score status (in that order)."""
    edits, scores = current_results(run_dir, samples)
    counts: dict[str, int] = {"edit failed": 0, **{status: 0 for status in statuses.STATUSES if status != statuses.OK}}
    for sample in samples:
        edit, score = edits.get(sample.id), scores.get(sample.id)
        if edit is not None and edit.get("status") == "failed":
            key = "edit failed"
        elif score is not None and score.get("status") != statuses.OK:
            key = str(score.get("status"))
        else:
            continue
        counts[key] = counts.get(key, 0) + 1
    return {key: n for key, n in counts.items() if n}


def exit_status(summary: dict, stages: tuple[str, ...], *, stopped: str = "", allow_failures: bool = False,
                counts: dict[str, int] | None = None) -> tuple[int, str]:
    """The exit code of a finished session and the line that says why, printed last ("" for 0 with
    nothing to say). EXIT_OK: every sample edited and judged (edited, without the judge);
    EXIT_NONE: none was; EXIT_SOME_FAILED: some were not. allow_failures: EXIT_OK instead of those two
    where every sample was tried (nothing left by a stop or unfinished)."""
    total = summary["samples"]
    judged = "score" in stages
    good = summary["scored"] if judged else summary["edited"]
    if good >= total:
        return EXIT_OK, ""
    unfinished = (summary["pending"] if judged else total - summary["edited"] - summary["edit_failures"])
    parts = [f"{status} {n}" for status, n in (counts or {}).items() if n]
    if unfinished:
        parts.append(f"not {'judged' if judged else 'edited'} {unfinished}")
    what = "judged" if judged else "edited"
    count = f"{total - good} of {total} sample(s) not {what}" + (f" ({', '.join(parts)})" if parts else "")
    if stopped:
        count += "; stopped early (see above)"
    if allow_failures and not unfinished and not stopped:
        return EXIT_OK, f"{count}: exit 0 (--allow-failures)"
    code = EXIT_NONE if good == 0 else EXIT_SOME_FAILED
    meaning = f"none was {what}" if code == EXIT_NONE else f"some samples were not {what}"
    hint = "" if unfinished or stopped else "; --allow-failures exits 0 for recorded failures"
    return code, f"{count}: exit {code} ({meaning}{hint})"


# -- the plan (--dry-run) ---------------------------------------------------------------------------
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


def samples_from_records(run_dir: RunDir) -> list[Sample]:
    # The edit line last: it is the one edit_state() checks the instruction of.
    records = {**latest_by_id(run_dir.scores.read()), **latest_by_id(run_dir.edits.read())}
    return [Sample(id=r["id"], category=r.get("category", ""), instruction=r.get("instruction", ""))
            for r in records.values()]


__all__ = ["RunError", "execute", "rebuild_report", "config_from_run_dir", "FleetError"]


def _check_adapters(config, manifest: dict, identity: dict, run_dir) -> None:
    """The editors' LoRAs (runtime.lora: sha256 and scale of each) and scheduler override are those the
    config names and those the output dir was made with (a static fleet's editors are not started here)."""
    runtime = identity["model"].get("runtime") or {}
    running = [(lora["sha256"], float(lora["scale"])) for lora in json.loads(runtime.get("lora") or "[]")]
    wanted = [(lora.get("sha256"), lora["scale"]) for lora in config.edit_settings().get("loras", [])]
    if wanted and all(sha for sha, _ in wanted) and wanted != running:
        raise RunError(f"the editors run LoRA(s) {running or 'none'} (sha256, scale), the config names {wanted}")
    prior = ((manifest.get("editor") or {}).get("model") or {}).get("runtime")
    if prior is not None:
        for key in ("lora", "scheduler"):
            if prior.get(key) != runtime.get(key):
                raise RunError(f"the editors' {key} differs from the one {run_dir.path} was made with "
                               f"({prior.get(key) or 'none'} -> {runtime.get(key) or 'none'}); use another --output")
