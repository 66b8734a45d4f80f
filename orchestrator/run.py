"""The whole job, phase by phase: benchmark → edits (dynamic queue over the editors) → editors to
zero → judge → summary and report. Every phase reads what the one before wrote, so a rerun on the
same output dir picks up where a crash left off, and `score`/`report` re-run single phases."""

from __future__ import annotations

import dataclasses
import json
import time
from functools import partial
from dataclasses import dataclass
from pathlib import Path


from editfleet_common import settings
from editfleet_common.channels import ServiceError
from editor_service.client import EditorClient
from scorer_service.client import ScorerClient, info_to_dict

from . import manifest as mf
from . import preflight, suite_headline
from . import ui as ui_lines
from .benchmark import Benchmark, BenchmarkError, Sample, headline, load_benchmark, suite_of
from .config import RunConfig, build_config, client_tls, protocol_reply_budget
from .dispatch import Dispatcher
from .fleet import Fleet, FleetError, make_fleet
from .identity import DifferentModel, environment_warning, same_identity_everywhere
from .report import write_report
from .results import RunDir, judge_tokens, latest_by_id, made_for, score_key, summarize, write_json_atomic
from .scoring import ScoreItem, Scorer
from .tables import write_tables


class RunError(Exception):
    """Stops the run with a message for the user (no traceback)."""


@dataclass
class RunResult:
    exit_code: int
    summary: dict | None
    run_dir: RunDir


def load_samples(config: RunConfig) -> Benchmark:
    b = config.benchmark
    if not b.path:
        raise RunError("no benchmark given (benchmark.path in the config, or --benchmark)")
    return load_benchmark(b.path, b.format, categories=b.categories, limit=b.limit,
                          options={"language": b.language, "image_root": b.image_root})


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
    manifest.setdefault("sessions", []).append({"started": mf.now(), "status": "running"})
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
def edit_phase(config: RunConfig, fleet: Fleet, run_dir: RunDir, manifest: dict, samples: list[Sample],
               todo: list[Sample], ui, session: dict, *, judge_next: bool = False) -> None:
    """judge_next: the score phase follows; a fleet that can stages the judge while editing."""
    count = min(config.editor_count, len(todo))
    ui.print(f"Starting {count} editor(s) ({config.fleet.kind} fleet) for {len(todo)} sample(s)...")
    t0 = time.monotonic()
    endpoints = fleet.start_editors(count)
    session["editors_up_s"] = round(time.monotonic() - t0, 2)
    ui.print(f"{len(endpoints)} editor(s) SERVING in {session['editors_up_s']:.1f}s: "
             + ", ".join(f"{e.name}={e.address}" for e in endpoints))
    # After the editors are up, so that staging does not slow their start (disk, CPU).
    if judge_next and fleet.prestart_scorer():
        ui.print("Staging the judge in host memory while editing (judge.prestart); it takes the GPU once the editors are down")

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
    check_run_config(fleet, settings.EDITOR_SETTINGS, config.editor, identity, "editor")
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
    over = [s.id for s in todo if len(s.image_paths()) > max_images]
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

    ui.start_editing(len(samples), len(samples) - len(todo), [e.name for e in endpoints])
    t1 = time.monotonic()
    dispatcher = Dispatcher(fleet, endpoints, todo, settings=config.editor, run_dir=run_dir, ui=ui,
                            client_factory=partial(EditorClient, tls=client_tls(config.editor.tls)), identity=identity)
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
    if judge_next and not outcome.remaining:
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


def score_phase(config: RunConfig, fleet: Fleet, run_dir: RunDir, manifest: dict, samples: list[Sample],
                ui, session: dict, *, retry_failed: bool) -> None:
    done, _ = run_dir.edit_state(samples)
    repeats = config.judge.repeats
    keep = run_dir.score_state(done, retry_failed=retry_failed, repeats=repeats)
    # (sample, repeat) by score key; with one repeat the keys are the sample ids
    wanted = {score_key(s.id, r): (s, r) for s in samples if s.id in done for r in range(repeats)}
    todo_ids = [key for key in wanted if key not in keep]
    if not todo_ids:
        ui.print(f"Judging: nothing to do ({len(keep)} sample(s) already scored)")
        return
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
        check_run_config(fleet, settings.API_JUDGE_SETTINGS if config.judge.backend == "openai" else settings.JUDGE_SETTINGS,
                         config.judge, infos[endpoint.name], "judge")
    info = infos[scorers[0].name]
    for name, other in infos.items():  # one judge, however many replicas: the same model and protocols
        if (other["model"]["content_hash"], other["protocols"]) != (info["model"]["content_hash"], info["protocols"]):
            raise RunError(f"judge replica {name} runs another model or other protocols than {scorers[0].name} "
                           f"({other['model']['content_hash']} vs {info['model']['content_hash']})")
    protocol_name = config.judge.protocol or info["default_protocol"]
    if protocol_name not in info["protocols"]:
        raise RunError(f"the judge has no protocol {protocol_name!r} (it has: {', '.join(info['protocols'])})")
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
    ui.print(f"[Qwen3-VL Scoring] {len(items)} image(s), protocol {protocol_name}, batch size {batch}"
             + (f", {repeats} judgements of each edit" if repeats > 1 else "")
             + (f", {len(scorers)} judge replicas" if len(scorers) > 1 else ""))

    def restart(endpoint):
        replaced = fleet.restart_scorer(endpoint)
        return replaced.address if replaced is not None else None

    # requests on the stream at once: enough to keep the device batches (or the API's requests) full
    concurrency = batch if config.judge.backend == "transformers" else config.judge.max_concurrency
    scorer = Scorer(run_dir=run_dir, ui=ui, protocol=protocol_name, batch_size=batch,
                    max_in_flight=config.judge.max_in_flight or 4 * concurrency, max_attempts=config.judge.max_attempts,
                    client_factory=partial(ScorerClient, tls=client_tls(config.judge.tls)), restart=restart, judge_hash=judge_hash,
                    stall_timeout_s=config.judge.stall_timeout_s)
    t1 = time.monotonic()
    try:
        outcome = scorer.run(scorers, items)
    finally:
        if "api" in manifest["judge"]:
            session["judge_tokens"] = dict(scorer.tokens)
            record_api_usage(manifest, run_dir, samples)
    session.update(scored=outcome.scored, score_failures=outcome.failed, scoring_s=round(time.monotonic() - t1, 2),
                   scorer_restarts=outcome.restarts)
    t2 = time.monotonic()
    fleet.stop_scorer()
    session["scorer_down_s"] = round(time.monotonic() - t2, 2)
    if outcome.unscored:
        raise RunError(f"the judge kept failing; {len(outcome.unscored)} sample(s) not scored. "
                       f"See {run_dir.logs}/scorer.log and rerun the same command to finish.")


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
    summary = summarize(samples, edits, scores, failures_as=config.judge.failures,
                        headline=headline((manifest.get("benchmark") or {}).get("format")))
    summary["run"] = {"output": str(run_dir.path), "editor": config.editor.model, "judge": config.judge.model,
                      "protocol": ((manifest.get("judge") or {}).get("protocol") or {}).get("name")}
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


def execute(config: RunConfig, *, stages=("edit", "score"), retry_failed: bool = False, ui,
            edits_from: Path | None = None, extra_manifest: dict | None = None) -> RunResult:
    benchmark = load_samples(config)
    samples = benchmark.samples
    out = Path(config.output) if config.output else default_output(benchmark)
    settle_protocol(config, benchmark, RunDir(out).read_manifest())
    if "score" in stages:
        try:
            preflight.check_judging(config, samples)
        except preflight.PreflightError as exc:
            raise RunError(str(exc)) from None
    run_dir, manifest = open_run_dir(config, benchmark, edits_from=edits_from, extra=extra_manifest,
                                     judging="score" in stages)
    session = manifest["sessions"][-1]
    ui.print(f"Benchmark {benchmark.path} ({benchmark.format}): {len(samples)} sample(s) in "
             f"{len(benchmark.categories)} categories; output {run_dir.path}")
    fleet = None
    status = "failed"
    try:
        fleet = make_fleet(config, run_dir.logs)
        if "edit" in stages:
            done, failed = run_dir.edit_state(samples, retry_failed=retry_failed)
            todo = [s for s in samples if s.id not in done and s.id not in failed]
            if done or failed:
                ui.print(f"Resuming: {len(done)} edit(s) done, {len(failed)} recorded failure(s) kept"
                         + (" (use --retry-failed to redo them)" if failed else "") + f", {len(todo)} to edit")
            if todo:
                edit_phase(config, fleet, run_dir, manifest, samples, todo, ui, session,
                           judge_next="score" in stages)
        if "score" in stages:
            score_phase(config, fleet, run_dir, manifest, samples, ui, session, retry_failed=retry_failed)
        judged = "score" in stages
        summary = finish(config, run_dir, manifest, samples, ui,
                         title="[Qwen3-VL Scoring] Completed!" if judged else "Summary (edits only, not judged yet)")
        status = "complete" if summary["complete"] else "incomplete"
        ui.print(f"Report: {run_dir.report_path}")
        return RunResult(0, summary, run_dir)
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
