"""Checks run before anything starts (no service, no run folder): what would otherwise be found only
after the editing phase, or as a traceback of a service. For `run` and `score`:

  - the models resolve on this machine (local fleet): a local folder exists and holds the files its
    service loads (the judge's config.json, the editor's model_index.json; the metrics judge's CLIP and
    DINO folders, each config.json); a name that looks like a
    path and is not there is a missing folder, never taken for a hub id; a hub id is in the local
    Hugging Face cache when HF_HUB_OFFLINE=1 forbids a download;
  - the GPUs asked for exist (counted with `nvidia-smi -L`, else /proc/driver/nvidia/gpus; torch is
    never imported here);
  - the models fit where they will load: the editor's weights on each of its GPUs (CPU editors: N
    copies in RAM), the judge's on its GPU(s) or in RAM, from the safetensors headers of their folders
    against nvidia-smi's free memory (editfleet_common.memory_fit, as the services check at start-up);
  - the API key's variable (editor.api_key_env of an API editor, judge.api_key_env of an API judge) is
    set and not empty in this environment, which the local fleet's services inherit (named, never its
    value);
  - the image limits agree: the orchestrator takes what the services take (their --max-input-pixels /
    --max-image-pixels in editor.server_args / judge.server_args), an image the judge would refuse is
    refused before it is edited, an edit size over a service's limit is refused;
  - the judge protocol exists where the run's own judge will look for it, and it can judge every
    sample (its categories, template variables and images); a reference-metrics protocol goes with
    judge.backend metrics and no other protocol does (local fleet); judge.failures zero is refused
    under a protocol whose score is better lower (MagicBrush's L1: a failure would count as the best).

Every problem is listed at once (`PreflightError.problems`); warnings (samples the editors will refuse
at once, recorded as failed edits) are returned for the console.
"""

from __future__ import annotations

import difflib
import io
import os
import re
from dataclasses import dataclass, field

from editfleet_common import settings
from editfleet_common.images import DEFAULT_MAX_PIXELS
# the model and GPU checks the services make at start-up too (one copy); resolve_model and
# looks_like_path are read from here by identity.py
from editfleet_common.model_checks import gpu_count, looks_like_path, model_problem, resolve_model  # noqa: F401
from suites.shared.protocol import Protocol
from suites.shared.samples import Sample

from .config import RunConfig
from .judge_protocol import find_protocol, protocol_files

SHOWN = 5  # sample ids listed per problem
_OWN_WORDS = re.compile(r"^protocol '[^']*'( \(category '[^']*'\))?: ")  # said once in the line already
PIXEL_FLAGS = ("--max-input-pixels", "--max-image-pixels")  # one flag of both services (editfleet_common.service)


class PreflightError(Exception):
    """Problems found before the run started: every one listed, nothing started."""

    def __init__(self, problems: list[str] | str, lead: str = "nothing was started"):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.lead = lead
        super().__init__(self.message())

    def message(self) -> str:
        """One problem: itself (the benchmark's own list says "nothing was started" already); several: each
        on its line under one heading."""
        if len(self.problems) == 1:
            only = self.problems[0]
            return only if "nothing was started" in only.split("\n", 1)[0] else f"{self.lead}: {only}"
        return (f"{self.lead}; {len(self.problems)} problems found before the first edit:\n"
                + "\n".join("  - " + "\n    ".join(p.splitlines()) for p in self.problems))


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: "Findings") -> None:
        self.problems += other.problems
        self.warnings += other.warnings


# -- the judge protocol (as the run's judge reads it: judge_protocol.find_protocol) --------------------
def judge_inputs(sample: Sample) -> tuple[str, dict, set[str], int]:
    """(category, variables, present, sources) of a sample as scoring.build_score_request sends it."""
    variables = {**sample.judge_variables(), "category": sample.category}
    if sample.instruction.strip():
        variables["edit_instruction"] = sample.instruction
    present = {name for name, there in (("reference", sample.reference_images),
                                         ("more_sources", sample.input_count() > 1)) if there}
    return sample.category, variables, present, sample.input_count()


def unmet(protocol: Protocol, sample: Sample) -> str | None:
    """Why `protocol` cannot judge `sample` (its request as scoring.build_score_request sends it)."""
    return protocol.unmet(*judge_inputs(sample))


def asked_questions(protocol: Protocol, sample: Sample) -> list[str]:
    """The names of the questions `protocol` asks of `sample`, in order (the judge's order too)."""
    category, variables, present, _ = judge_inputs(sample)
    try:
        return [q.name for q in protocol.asked(category, variables, present)]
    except Exception:  # noqa: BLE001 - an unmet sample: preflight lists it
        return []


def judging_problems(config: RunConfig, samples: list[Sample]) -> list[str]:
    """An unknown protocol (on the local fleet, whose judge reads exactly these files), samples the
    protocol cannot judge (grouped by reason)."""
    name = config.judge.protocol
    protocol = find_protocol(config.judge)
    if protocol is None:
        if config.fleet.kind != "local":
            return []  # a judge started elsewhere may hold other protocols: it is asked when it is reached
        known = sorted({p.stem for p in protocol_files(config.judge)})
        close = difflib.get_close_matches(name or "", known, n=1)
        return [f"judge protocol {name!r} not found; known: {', '.join(known)}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + " (--protocol / judge.protocol; a protocol of your own: judge.server_args --protocols-dir DIR, "
                  "or a suite folder)"]
    backend = config.judge.backend
    if config.fleet.kind == "local" and (protocol.combine == "metrics") != (backend == "metrics"):
        # the local fleet starts the judge with this backend: the other would answer every sample wrongly
        if backend == "metrics":
            return [f"judge protocol {name!r} asks a judge model, and judge.backend metrics (--judge-backend) computes "
                    "reference metrics only, for a protocol with `combine: metrics` (MagicBrush's, Emu Edit's): "
                    "name one with --protocol, or another judge backend"]
        return [f"judge protocol {name!r} is reference metrics (`combine: metrics`), computed by judge.backend metrics "
                f"(--judge-backend metrics, with --judge-model the CLIP model and --judge-dino-model the DINO "
                f"model), not asked of a {backend} judge"]
    reasons: dict[str, list[str]] = {}
    for sample in samples:
        why = unmet(protocol, sample)
        if why:  # grouped by reason, whatever the category
            reasons.setdefault(_OWN_WORDS.sub("", why), []).append(sample.id)
    problems = [f"{len(ids)} sample(s) cannot be judged with protocol {name!r}: {why} "
                f"({', '.join(ids[:SHOWN])}{', ...' if len(ids) > SHOWN else ''})" for why, ids in reasons.items()]
    if problems:
        problems[-1] += ("\n(name a protocol for this data with --protocol; `orchestrator suites` lists "
                         "each suite's own)")
    return [p for p in (failures_problem(config, protocol),) if p] + problems


def failures_problem(config: RunConfig, protocol: Protocol) -> str | None:
    """judge.failures zero counts a failure as 0: under a lower-is-better score (MagicBrush's L1) that
    is the best value there is, so the combination is refused (compare warns of runs made before)."""
    if config.judge.failures != "zero" or protocol.better != "lower":
        return None
    return (f"judge.failures zero (--failures) counts a failure as 0, and protocol {protocol.name!r}'s score "
            f"{protocol.score_label} is better lower: a failed edit would count as the best value (leave "
            f"judge.failures at exclude, the default, which leaves failures out of the means)")


def check_judging(config: RunConfig, samples: list[Sample]) -> None:
    """Raise PreflightError listing every protocol problem (judging_problems)."""
    problems = judging_problems(config, samples)
    if problems:
        raise PreflightError(problems)


# -- models ---------------------------------------------------------------------------------------
def model_problems(config: RunConfig, stages: tuple[str, ...]) -> list[str]:
    """The models of the services this machine starts (local fleet) resolve here."""
    if config.fleet.kind != "local":
        return []  # services started elsewhere load their own copies: their identity is checked when reached
    out = []
    # an editor behind an API (editor.backend other than diffusers) names a model id of its provider
    if "edit" in stages and getattr(config.editor, "backend", "diffusers") == "diffusers":
        out.append(model_problem(config.editor.model, what="editor", needs="model_index.json", kind="diffusers",
                                 key="editor.model", flag="--editor-model", dummy=config.editor.load_format == "dummy"))
    if "score" in stages and config.judge.backend == "transformers":
        out.append(model_problem(config.judge.model, what="judge", needs="config.json", kind="transformers",
                                 key="judge.model", flag="--judge-model", dummy=config.judge.load_format == "dummy"))
    if "score" in stages and config.judge.backend == "metrics":  # two backbones: CLIP (judge.model) and DINO
        dummy = config.judge.load_format == "dummy"
        out.append(model_problem(config.judge.model, what="metrics judge's CLIP", needs="config.json",
                                 kind="transformers", key="judge.model", flag="--judge-model", dummy=dummy))
        out.append(model_problem(config.judge.dino_model or settings.DINO_MODEL.service_default,
                                 what="metrics judge's DINO", needs="config.json", kind="transformers",
                                 key="judge.dino_model", flag="--judge-dino-model", dummy=dummy))
    return [p for p in out if p]


# -- API keys -------------------------------------------------------------------------------------
def api_key_problems(config: RunConfig, stages: tuple[str, ...]) -> list[str]:
    """The variable an API editor's or an API judge's key is read from is set here (local fleet: the services
    started here inherit this environment; elsewhere the key is the service's own). Its value is never read
    beyond whether it is empty."""
    if config.fleet.kind != "local":
        return []
    asked = []
    if "edit" in stages and config.api_editor and config.editor.api_key_env:
        asked.append(("editor.api_key_env", config.editor.api_key_env, f"the API editor ({config.editor.backend})"))
    if "score" in stages and config.judge.backend == "openai" and config.judge.api_key_env:
        asked.append(("judge.api_key_env", config.judge.api_key_env, "the API judge (judge.backend openai)"))
    return [f"{key}: the environment variable {name} is not set or empty here, and {who} reads its API key from it "
            f"(export {name}=...; or {key}: '' for an endpoint that takes no key)"
            for key, name, who in asked if not os.environ.get(name)]


# -- GPUs -----------------------------------------------------------------------------------------
def gpu_problems(config: RunConfig, stages: tuple[str, ...]) -> list[str]:
    """The GPUs the local fleet would put services on exist (other fleets' GPUs are elsewhere)."""
    if config.fleet.kind != "local":
        return []
    asked: dict[int, str] = {}
    if "edit" in stages:
        for gpu in config.devices.gpus or []:
            asked.setdefault(gpu, "--gpus / devices.gpus")
    if "score" in stages and config.judge.backend != "openai":  # a local judge: transformers or metrics
        if config.devices.judge_gpu is not None:
            asked.setdefault(config.devices.judge_gpu, "devices.judge_gpu (score --gpu)")
        elif "edit" not in stages:
            for gpu in config.devices.gpus or []:  # `score`: the judge on the run's GPUs
                asked.setdefault(gpu, "the run's devices.gpus")
    if not asked:
        return []
    count = gpu_count()
    missing = sorted(g for g in asked if g >= count)
    if not missing:
        return []
    named = ",".join(str(g) for g in sorted(asked))
    if count == 0:
        return [f"GPU {named} ({', '.join(sorted(set(asked.values())))}): this machine has no GPU "
                "(nvidia-smi finds none); on the CPU, give --editors N instead (devices.editors)"]
    return [f"GPU {','.join(map(str, missing))} ({', '.join(sorted({asked[g] for g in missing}))}): not on this "
            f"machine, which has {count} GPU(s): {', '.join(str(i) for i in range(count))}"]


# -- memory ---------------------------------------------------------------------------------------
def memory_problems(config: RunConfig, stages: tuple[str, ...]) -> list[str]:
    """The local fleet's models against the memory where they will load (editfleet_common.memory_fit):
    the editor's weights on each GPU of devices.gpus (CPU editors: each holds its own copy in RAM), the
    judge's on its GPU(s) (devices.judge_gpu, or its judge.gpus_per_replica GPUs of the run) or in RAM,
    read from the safetensors headers of their folders in the dtype each service will use. A dummy load
    (no torch here to build it) or a hub id still to be downloaded is not estimated here: the service
    checks it as it starts."""
    if config.fleet.kind != "local":
        return []
    out = []
    e, j = config.editor, config.judge
    if "edit" in stages and not config.api_editor and e.load_format != "dummy":
        out += _editor_memory(config)
    if "score" in stages and j.backend == "transformers" and j.load_format != "dummy":
        out += _judge_memory(config)
    return out


def _weights(section, device: str):
    """A service's weights on `device` ('cuda' or 'cpu') in the dtype its arguments give it, or None."""
    from editfleet_common.dtypes import resolve_dtype_name
    from editfleet_common.memory_fit import model_weights

    folder = resolve_model(section.model) if section.model else None
    if folder is None:
        return None
    dtype = server_arg(section.server_args, ("--dtype",)) or section.dtype or "auto"
    try:
        return model_weights(folder, resolve_dtype_name(dtype, device))
    except ValueError:
        return None  # an unknown dtype: the service refuses it in its own words


def _editor_memory(config: RunConfig) -> list[str]:
    from editfleet_common.memory_fit import Weights, does_not_fit, fits, gib, gpus_room, gpus_with_room, ram_room

    e, gpus = config.editor, config.devices.gpus
    weights = _weights(e, "cuda" if gpus else "cpu")
    if weights is None:
        return []
    dtype = (["editor.dtype: bfloat16 halves them"] if weights.dtype == "float32" else [])
    if not gpus:
        count, room = config.editor_count, ram_room()
        if fits(Weights({"": weights.total * count}, weights.dtype, weights.source), room):
            return []
        fewer = room.free // weights.total if weights.total else 0
        remedies = ([f"fewer CPU editors (--editors {fewer} fit)"] if 0 < fewer < count else []) + dtype
        if count == 1:
            return [does_not_fit("editor", e.model, weights, room, remedies)]
        return [f"editor model {e.model} does not fit in RAM {count} times over (--editors {count}: each CPU editor "
                f"holds its own copy): its weights take {weights.describe()}, {gib(weights.total * count)} for "
                f"{count}, and {room.describe()}: {'; '.join(remedies) or 'run fewer editors on a machine with more memory'}"]
    out = []
    for gpu in gpus:
        room = gpus_room([gpu])
        if fits(weights, room):
            continue
        others = gpus_with_room(room, weights.total, but=list(gpus))
        roomy = [g for g in gpus if g != gpu and fits(weights, gpus_room([g]))]
        remedies = dtype + ([f"leave GPU {gpu} out of --gpus"] if roomy else [])
        remedies += [f"GPU{'s' if len(others) > 1 else ''} {','.join(map(str, others))} "
                     f"{'have' if len(others) > 1 else 'has'} room (--gpus)"] if others else []
        remedies.append(f"free GPU {gpu} (nvidia-smi lists what holds it)")
        out.append(does_not_fit("editor", e.model, weights, room, remedies))
    return out


def _judge_memory(config: RunConfig) -> list[str]:
    from editfleet_common.memory_fit import does_not_fit, fits, gpus_room, gpus_with_room, ram_room, split_count

    j = config.judge
    out = []
    for replica in range(config.judge_replicas):  # each on its own GPUs (the CPU: one)
        gpus = config.judge_replica_gpus(replica)
        weights = _weights(j, "cuda" if gpus else "cpu")
        if weights is None:
            return []
        room = gpus_room(gpus) if gpus else ram_room()
        if fits(weights, room):
            continue
        remedies = ["judge.dtype: bfloat16 halves them"] if weights.dtype == "float32" else []
        if gpus:
            k = split_count(weights.total, room, among=config.devices.gpus or gpus)
            if k and k > len(gpus):
                remedies.append(f"split it over {k} GPUs (--judge-gpus-per-replica {k})")
            others = gpus_with_room(room, weights.total, but=gpus)
            if others:
                remedies.append(f"GPU{'s' if len(others) > 1 else ''} {','.join(map(str, others))} "
                                f"{'have' if len(others) > 1 else 'has'} room (devices.judge_gpu; score --gpu)")
            remedies.append(f"free {room.where} (nvidia-smi lists what holds it)")
        out.append(does_not_fit("judge", j.model, weights, room, remedies))
    return out


# -- image limits ---------------------------------------------------------------------------------
def server_arg(args: list[str], names: tuple[str, ...]) -> str | None:
    """The value of the last of `names` in a service's extra arguments (`--flag V` or `--flag=V`)."""
    value = None
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    return value


@dataclass
class Limits:
    editor: int            # the editors' --max-input-pixels (inputs and the asked output size)
    judge: int             # the judge's (every image it is sent)
    problems: list[str] = field(default_factory=list)

    def orchestrator(self, stages: tuple[str, ...]) -> int:
        """The largest image the orchestrator takes: whatever a service of this run takes."""
        return max(self.editor if "edit" in stages else 0, self.judge if "score" in stages else 0) or DEFAULT_MAX_PIXELS


def service_limits(config: RunConfig) -> Limits:
    """The services' pixel limits as their arguments set them (the default where they say nothing)."""
    limits = Limits(DEFAULT_MAX_PIXELS, DEFAULT_MAX_PIXELS)
    for section, key in ((config.editor, "editor"), (config.judge, "judge")):
        text = server_arg(section.server_args, PIXEL_FLAGS)
        if text is None:
            continue
        try:
            value = int(text)
            if value < 1:
                raise ValueError
        except ValueError:
            limits.problems.append(f"{key}.server_args: {PIXEL_FLAGS[0]} must be a whole number >= 1, got {text!r}")
            continue
        setattr(limits, key, value)
    return limits


def image_pixels(sample: Sample) -> list[tuple[str, int, str]]:
    """(which, pixels, WxH) of every image the judge is sent besides the edit, read from headers."""
    from PIL import Image

    out = []
    if sample.image_bytes is not None and sample.image_path is None:  # embedded in the data
        embedded = [sample.image_bytes, *sample.more_image_bytes]
        sources = [(f"images[{i}]" if len(embedded) > 1 else "image", data) for i, data in enumerate(embedded)]
    else:
        sources = [(f"images[{i}]" if sample.more_images else "image", p) for i, p in enumerate(sample.image_paths())]
    sources += [(f"reference_images[{i}]", p) for i, p in enumerate(sample.reference_images)]
    for which, source in sources:
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
                w, h = img.size
        except Exception:  # noqa: BLE001 - the benchmark's own checks name unreadable images
            continue
        out.append((which, w * h, f"{w}x{h}"))
    return out


def limit_findings(config: RunConfig, stages: tuple[str, ...], samples: list[Sample] | None,
                   limits: Limits) -> Findings:
    """Edit sizes over a service's limit (every edit refused: a problem); sample images over the judge's
    (edited, then refused by the judge: a problem) or over the editors' only (refused at once and recorded
    as failed edits, as over-sized inputs always were: a warning)."""
    found = Findings(problems=list(limits.problems))
    local = config.fleet.kind == "local"
    e = config.editor
    pixels = e.width * e.height
    if "edit" in stages and pixels:
        if local and pixels > limits.editor:
            found.problems.append(f"editor size {e.width}x{e.height} = {pixels} pixels is over the editors' "
                                  f"{PIXEL_FLAGS[0]} {limits.editor}: every edit would be refused (--size; or raise "
                                  f"it in editor.server_args)")
        if local and "score" in stages and pixels > limits.judge:
            found.problems.append(f"editor size {e.width}x{e.height} = {pixels} pixels is over the judge's "
                                  f"{PIXEL_FLAGS[0]} {limits.judge}: every edit would be refused by the judge "
                                  f"(--size; or raise it in judge.server_args)")
    if not samples or not local:
        return found
    lowest = min(limits.editor if "edit" in stages else limits.judge, limits.judge if "score" in stages else limits.editor)
    if lowest >= limits.orchestrator(stages):
        return found  # every image the benchmark's checks let through fits every service
    over_judge: list[str] = []
    over_editor: list[str] = []
    for sample in samples:
        sizes = image_pixels(sample)
        if "score" in stages and any(n > limits.judge for _, n, _ in sizes):
            over_judge.append(f"{sample.id} ({', '.join(s for _, n, s in sizes if n > limits.judge)})")
        elif "edit" in stages and any(n > limits.editor for w, n, _ in sizes if not w.startswith("reference")):
            over_editor.append(f"{sample.id} ({', '.join(s for w, n, s in sizes if n > limits.editor)})")
    if over_judge:
        found.problems.append(
            f"{len(over_judge)} sample(s) have images over the judge's {PIXEL_FLAGS[0]} {limits.judge} "
            f"(judge.server_args; the editors take up to {limits.editor}): they would be edited, then refused by the "
            f"judge: {', '.join(over_judge[:SHOWN])}{', ...' if len(over_judge) > SHOWN else ''}")
    if over_editor:
        found.warnings.append(
            f"{len(over_editor)} sample(s) have images over the editors' {PIXEL_FLAGS[0]} {limits.editor} "
            f"(editor.server_args); they will be recorded as failed edits: "
            f"{', '.join(over_editor[:SHOWN])}{', ...' if len(over_editor) > SHOWN else ''}")
    return found


# -- all of it ------------------------------------------------------------------------------------
def config_findings(config: RunConfig, stages: tuple[str, ...]) -> tuple[Findings, Limits]:
    """What can be checked before the benchmark is read: models, GPUs, the limits' arguments."""
    limits = service_limits(config)
    gpus = gpu_problems(config, stages)
    found = Findings(problems=model_problems(config, stages) + gpus + api_key_problems(config, stages)
                     + ([] if gpus else memory_problems(config, stages)))  # GPUs that are not there: no room to tell
    return found, limits


def sample_findings(config: RunConfig, stages: tuple[str, ...], samples: list[Sample], limits: Limits) -> Findings:
    """What needs the samples: image limits, and the protocol against each sample (when judging)."""
    found = limit_findings(config, stages, samples, limits)
    if "score" in stages:
        found.problems += judging_problems(config, samples)
    return found
