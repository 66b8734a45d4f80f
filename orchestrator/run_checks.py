"""The services against the run, once up and before any edit or judgement: every editor (every judge
replica) runs the same model, the one the run config names (model, LoRAs, scheduler, the flags of
services started elsewhere) and the output dir was made with, the editors take the run's step counts,
and the judge has the run's protocol.
Each problem is a RunError, or NothingDone where nothing was edited or judged yet."""

from __future__ import annotations

import dataclasses
import json

from editfleet_common import settings
from editfleet_common.channels import ServiceError
from editor_service.client import EditorClient
from scorer_service.client import ScorerClient, info_to_dict

from . import preflight
from .benchmark import Sample
from .config import RunConfig, client_tls
from .fleet import Fleet
from .identity import DifferentModel, environment_warning, model_mismatch, same_identity_everywhere
from .run_exit import NothingDone, RunError


def check_run_config(fleet: Fleet, run_settings, section, info: dict, name: str) -> None:
    """Where the fleet's services take their flags from elsewhere (Kubernetes: the StatefulSets), refuse
    services that do not run what the run config says, naming the field."""
    if not fleet.checks_run_config:
        return
    problems = settings.mismatches(run_settings, section, info, name)
    if problems:
        raise RunError(f"the {name} does not run what the run config says: " + "; ".join(problems)
                       + " (change the run config or the StatefulSet's args)")



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


def editors_agree(config: RunConfig, fleet: Fleet, endpoints, todo: list[Sample], run_dir, manifest: dict,
                  ui) -> tuple[dict, dict]:
    """The editors once up, before any edit: one identity everywhere (their environments may differ: a
    warning, recorded in the manifest), the flags and model the run config names, the run's step counts,
    the model and adapters the output dir was made with. Returns the identity and each editor's GetInfo."""
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
    return identity, infos


def judges_agree(config: RunConfig, fleet: Fleet, scorers) -> dict:
    """The judge replicas once up, before any judgement: the flags the run config names, one model and the
    same protocols on every replica, the judge and protocol the run names. Returns the first one's GetInfo."""
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
    return info
