"""The settings of a run, each defined once: the editor's and the judge's run-time settings, what
every edit request carries, and the run config's own.

A `Setting` is a run config key (`editor.speed_mode`), the service flag it becomes (`--speed-mode`;
none for a setting the orchestrator uses itself), its type, choices and help, and where the service
reports it back in GetInfo. From these definitions come:
  * the services' flags (`add_flags`: editor_service/__main__.py, scorer_service/__main__.py and the
    common frame, editfleet_common/service.py);
  * the local fleet's argv for a run config section (`argv`: orchestrator/fleet/local.py);
  * the check of a run config against what running services report (`mismatches`: the Kubernetes
    fleet, whose pods get their flags from the StatefulSet rather than from the run config);
  * the `orchestrator` flags that set them (orchestrator/setting_flags.py: each names its Setting
    and the run config section) and the run config reference (tools/gen_docs.py).
No torch, no grpc: the orchestrator imports this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .dtypes import DTYPES

LOAD_FORMATS = ("auto", "dummy")
SPEED_MODES = ("reference", "default", "fast")


@dataclass(frozen=True)
class Setting:
    key: str                        # field of the run config's section (editor / judge / ...), or a top-level one
    flag: str | None = None         # the service flag; None: the orchestrator's own (no service takes it)
    type: Callable = str
    help: str = ""
    choices: Sequence[str] | None = None
    service_default: Any = None     # the service's default when the flag is left out
    # where GetInfo says what runs: a ModelIdentity field ("model", "dtype", "load_format"), "runtime:KEY",
    # or a top-level info field ("max_batch_size"); None: not reported (not checked)
    reported_as: str | None = None
    # argv: whether to pass the flag when the config's value is the service's default (always for
    # required flags; a None config value is never passed)
    always: bool = False
    # how a config value becomes the flag's argument (default str); repeat: the value is a list and the
    # flag is given once per item (LoRA adapters)
    to_arg: Callable | None = None
    repeat: bool = False
    # whether a run config value and the reported one agree (default: as strings)
    agrees: Callable[[Any, Any], bool] | None = None

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def add_to(self, parser, **overrides) -> None:
        kwargs = {"type": self.type, "default": self.service_default, "help": self.help}
        if self.choices:
            kwargs["choices"] = list(self.choices)
        kwargs.update(overrides)
        if kwargs.get("required"):
            kwargs.pop("default")
        parser.add_argument(self.flag, dest=self.dest, **kwargs)


MODEL = Setting("model", "--model", help="HF model id or local directory", reported_as="model", always=True)
DTYPE = Setting("dtype", "--dtype", choices=("auto", *DTYPES), service_default="auto",
                help="auto: bfloat16 on GPUs, float32 on CPU", reported_as="dtype")
LOAD_FORMAT = Setting("load_format", "--load-format", choices=LOAD_FORMATS, service_default="auto",
                      help="dummy: the real architecture with random weights (performance work only)",
                      reported_as="load_format")
THREADS = Setting("threads", "--threads", type=int, always=True,
                  help="torch CPU threads, fixed so results do not depend on how many processes share the machine")
SPEED_MODE = Setting(
    "speed_mode", "--speed-mode", choices=SPEED_MODES, service_default="default", always=True,
    help="GPU only (CPU always runs reference): default = same outputs, faster kernels + compiled blocks; "
         "fast = FP8 + output forecast (transformer on ~1 step in 3), changes outputs (see editor_service/speed.py)",
    reported_as="runtime:speed_mode")
COMPILE_CACHE = Setting(
    "compile_cache", "--compile-cache",
    help="compiled modes: a directory of portable compile caches (one entry per model, mode, GPU and software); "
         "the first editor of a kind compiles and saves, later ones start warm (default: $EDITFLEET_COMPILE_CACHE; "
         "none: every editor compiles; editor_service/compile_cache.py)")
MAX_BATCH = Setting("max_batch", "--max-batch", type=int, service_default=8, always=True,
                    help="samples per device batch", reported_as="max_batch_size")
DEFAULT_MAX_NEW_TOKENS = 128


def reply_budget(named: int | None, protocol_budget: int | None) -> int:
    """The one rule for the longest reply (max_new_tokens) of a judge, whatever its backend: the budget the
    run names (the judge's --max-new-tokens, judge.max_new_tokens), else the protocol's own (its file's
    `max_new_tokens:`, the suite's scripts' budget, e.g. KRIS-Bench's 1000), else DEFAULT_MAX_NEW_TOKENS."""
    if named is not None:
        return named
    return protocol_budget if protocol_budget is not None else DEFAULT_MAX_NEW_TOKENS


MAX_NEW_TOKENS = Setting(
    "max_new_tokens", "--max-new-tokens", type=int,
    help=f"the longest reply, in tokens, for every protocol (default: each protocol's own budget, its file's "
         f"`max_new_tokens:`, else {DEFAULT_MAX_NEW_TOKENS}; settings.reply_budget). One smaller than a protocol's "
         f"own budget is said at start", reported_as="runtime:max_new_tokens")
GPUS = Setting(
    "gpus_per_replica", "--gpus", type=int, service_default=1,
    help="the judge's weights split over this many of the visible GPUs (transformers' balanced device_map), for "
         "a judge larger than one GPU; dynamic decoding, no staged start. Reported as runtime.gpus when > 1",
    reported_as="runtime:gpus")


def _same_loras(want: list, have: str) -> bool:
    """editor.loras [{path, scale}] against GetInfo's runtime.lora (JSON [{file, scale, sha256}]): the same
    files (by name: a pod's copy sits at its own path) with the same scales, in order."""
    try:
        running = [(item["file"], float(item["scale"])) for item in json.loads(have)]
    except (TypeError, ValueError, KeyError):
        return False
    return running == [(str(lora["path"]).replace("\\", "/").rsplit("/", 1)[-1], float(lora.get("scale", 1.0)))
                       for lora in want]


LORAS = Setting(
    "loras", "--lora", repeat=True, to_arg=lambda lora: f"{lora['path']}:{lora['scale']}",
    reported_as="runtime:lora", agrees=_same_loras,
    help="a LoRA adapter (.safetensors that diffusers' load_lora_weights reads) fused into the model at start, at "
         "SCALE (default 1); repeatable. Its sha256 and scale are part of the model identity (runtime.lora)")
SCHEDULER = Setting(
    "scheduler", "--scheduler", to_arg=lambda override: json.dumps(override, sort_keys=True),
    help='scheduler override merged over the pipeline\'s scheduler config, e.g. \'{"shift": 3.0}\' (with '
         '"_class_name" to change the class); a JSON object or a .json file (runtime.scheduler)')

# The judge over an OpenAI-compatible API (judge.backend openai; scorer_service/backends/openai_api.py)
JUDGE_BACKENDS = ("transformers", "openai", "metrics")  # metrics: scorer_service/backends/metrics
BACKEND = Setting("backend", "--backend", choices=JUDGE_BACKENDS, service_default="transformers",
                  help="who answers: a local model (transformers), an OpenAI-compatible chat-completions "
                       "endpoint (openai; --model is then the model id sent to it), or reference metrics against a "
                       "suite's references (metrics; --model is then CLIP, --dino-model DINO)",
                  reported_as="runtime:backend")
BASE_URL = Setting("base_url", "--base-url", service_default="",
                   help="openai: the endpoint, e.g. https://api.openai.com/v1")
API_KEY_ENV = Setting("api_key_env", "--api-key-env", service_default="OPENAI_API_KEY", always=True,
                      help="openai: the NAME of the environment variable holding the key ('': none); never the key")
MAX_CONCURRENCY = Setting("max_concurrency", "--max-concurrency", type=int, service_default=8, always=True,
                          help="openai: requests in flight at once (each sample is its own batch)",
                          reported_as="runtime:max_concurrency")
REQUEST_TIMEOUT_S = Setting("request_timeout_s", "--request-timeout-s", type=float, service_default=120.0,
                            help="openai: seconds per request")
MAX_RETRIES = Setting("max_retries", "--max-retries", type=int, service_default=5,
                      help="openai: retries of a request after 429, 5xx, a timeout or a dropped connection")
API_SETTINGS = (BACKEND, BASE_URL, API_KEY_ENV, MAX_CONCURRENCY, REQUEST_TIMEOUT_S, MAX_RETRIES)

# The editor behind an HTTP API (editor.backend openai-images / openai-chat-image; editor_service/api_editor/):
# the same base_url, api_key_env, max_concurrency, request_timeout_s and max_retries keys as the API judge's,
# in the editor section; provider differences are the provider files of editor_service/providers/.
EDITOR_BACKENDS = ("diffusers", "openai-images", "openai-chat-image")
EDITOR_BACKEND = Setting(
    "backend", "--backend", choices=EDITOR_BACKENDS, service_default="diffusers", reported_as="runtime:backend",
    help="who edits: a local diffusers pipeline, or a model behind an API: OpenAI's images/edits (openai-images) or "
         "chat completions whose reply carries the image (openai-chat-image); --model is then the model id sent")
EDITOR_PROVIDER = Setting(
    "provider", "--provider", service_default="", reported_as="runtime:provider",
    help="API editors: the provider's shape (field names, sizes, limits, refusals), a file of "
         "editor_service/providers/ by name (openai, openai-flexible-size, azure-openai, vllm-omni, sglang, editfleet, "
         "openrouter) or a path to a lab's own .json; default: openai (openai-images), openrouter (openai-chat-image)")
API_EDITOR_SETTINGS = (MODEL, EDITOR_BACKEND, EDITOR_PROVIDER, BASE_URL, API_KEY_ENV, MAX_CONCURRENCY, REQUEST_TIMEOUT_S,
                       MAX_RETRIES)

# What the orchestrator's run config sets on each service (the rest goes through server_args).
EDITOR_SETTINGS = (MODEL, DTYPE, LOAD_FORMAT, THREADS, SPEED_MODE, COMPILE_CACHE, LORAS, SCHEDULER)
JUDGE_SETTINGS = (MODEL, DTYPE, LOAD_FORMAT, THREADS, MAX_BATCH, MAX_NEW_TOKENS, GPUS)
API_JUDGE_SETTINGS = (MODEL, *API_SETTINGS, MAX_NEW_TOKENS)  # judge.backend openai: no device, no batch (each sample its own)

# The reference-metrics judge (judge.backend metrics; scorer_service/backends/metrics): MODEL is CLIP, and
DINO_MODEL = Setting(
    "dino_model", "--dino-model", service_default="facebook/dino-vits16", reported_as="runtime:dino_model",
    help="metrics judge: the DINO ViT-S/16 backbone (hub id or folder; transformers ViTModel); the judge's --model "
         "is then CLIP")
METRICS_JUDGE_SETTINGS = (*JUDGE_SETTINGS, DINO_MODEL)


def judge_settings(backend: str) -> tuple[Setting, ...]:
    """The settings a judge of this backend (judge.backend) runs with, as the run config sets them."""
    return {"openai": API_JUDGE_SETTINGS, "metrics": METRICS_JUDGE_SETTINGS}.get(backend, JUDGE_SETTINGS)


def add_flags(parser, settings: Sequence[Setting], **overrides: Mapping[str, Any]) -> None:
    """The settings as flags of a service's parser; overrides: flag dest -> add_argument kwargs."""
    for setting in settings:
        setting.add_to(parser, **overrides.get(setting.dest, {}))


def argv(settings: Sequence[Setting], section: Any) -> list[str]:
    """The flags that make a service run as a run config section says (attributes named by `key`)."""
    out: list[str] = []
    for setting in settings:
        value = getattr(section, setting.key)
        if value is None or (not setting.always and value == setting.service_default) or value in ([], {}):
            continue
        for item in (value if setting.repeat else [value]):
            out += [setting.flag, setting.to_arg(item) if setting.to_arg else str(item)]
    return out


def reported(setting: Setting, info: Mapping[str, Any]) -> Any:
    """The value a service's GetInfo (as a dict: info_to_dict / EditorInfo fields) reports for a setting."""
    where = setting.reported_as
    model = info.get("model") or {}
    if where is None:
        return None
    if where.startswith("runtime:"):
        return (model.get("runtime") or {}).get(where.removeprefix("runtime:"))
    if where in model:
        return model[where]
    return info.get(where)


def mismatches(settings: Sequence[Setting], section: Any, info: Mapping[str, Any], section_name: str) -> list[str]:
    """What a running service does otherwise than the run config section says, one line per field
    ("editor.model: the run config says X, the service runs Y"). Unset config values (None, "auto"
    dtype) and settings a service does not report are not compared."""
    found = []
    for setting in settings:
        want = getattr(section, setting.key)
        if setting.reported_as is None or want is None or (setting is DTYPE and want == "auto"):
            continue
        if setting is SPEED_MODE and str((info.get("model") or {}).get("device", "")).startswith("cpu"):
            continue  # CPU editors always run reference
        have = reported(setting, info)
        if setting is LORAS and have is None:
            have = "[]"  # an editor without adapters reports none
        agree = setting.agrees(want, have) if setting.agrees else str(have) == str(want)
        if have is not None and not agree:
            found.append(f"{section_name}.{setting.key}: the run config says {want!r}, the service runs {have!r} "
                         f"(its {setting.flag})")
    return found



# -- The run config's own settings (orchestrator/config.py): no service flag. orchestrator/setting_flags.py
# gives each its `orchestrator` flag (in a section of the run config); the help is the flag's.

# What every edit request carries (editfleet.v1.EditRequest; the editor's HTTP route takes the same): with
# the model, what decides the edited pixels (RunConfig.edit_settings)
STEPS = Setting("steps", type=int, help="Denoise steps (0: the editor's default).")
GUIDANCE = Setting("guidance", type=float, help="Guidance (true CFG for Qwen-Image-Edit; unset: the editor's default).")
NEGATIVE_PROMPT = Setting("negative_prompt", help="Negative prompt.")
SEED = Setting("seed", type=int, help="Base seed; each sample's seed = f(base seed, sample id).")
WIDTH = Setting("width", type=int, help="Output width in pixels, with editor.height (0: the pipeline's own choice).")
HEIGHT = Setting("height", type=int, help="Output height in pixels, with editor.width (0: the pipeline's own choice).")
EDIT_REQUEST_SETTINGS = (STEPS, GUIDANCE, NEGATIVE_PROMPT, SEED, WIDTH, HEIGHT)

# The benchmark (the `benchmark` section)
BENCHMARK_PATH = Setting("path", help="Benchmark file (.jsonl native or GEdit, .json seed, ImgEdit, RE-Edit or "
                                      "RISEBench format) or folder (KRIS-Bench's KRIS_Bench/).")
BENCHMARK_FORMAT = Setting("format", help="The suite whose data this is (default: detected); "
                                          "`orchestrator suites` lists them.")
IMAGE_ROOT = Setting("image_root", help="ImgEdit-Bench, RISEBench: the input images' root (default: the JSON's folder).")
CATEGORIES = Setting("categories", help="Only these categories (comma-separated).")
LIMIT = Setting("limit", type=int, help="Only the first N samples.")
LANGUAGE = Setting("language", help="GEdit-Bench: en, cn or all.")

# The judging (the `judge` section), devices and fleet, and the top level
PROTOCOL = Setting("protocol", help="Judge protocol (default: the suite's own; `orchestrator suites`).")
FAILURES = Setting("failures", choices=("exclude", "zero"),
                   help="Summary: leave failures out of the means (default) or count them as 0.")
REPEATS = Setting("repeats", type=int, help="Judge each edit K times (judges that sample); every repeat is recorded, "
                                            "the summary uses their mean.")
DEVICE_GPUS = Setting("gpus", help="One editor per GPU (CUDA_VISIBLE_DEVICES), e.g. 0,1,2,3.")
EDITORS = Setting("editors", type=int, help="Number of CPU editors (without GPUs).")
JUDGE_GPU = Setting("judge_gpu", type=int, help="GPU for the judge (default: CPU, or the run's first GPU).")
FLEET_KINDS = ("local", "static", "kubernetes")
FLEET_KIND = Setting("kind", choices=FLEET_KINDS, help="Who runs the services.")
EDITOR_ADDRESSES = Setting("editor_addresses", repeat=True, help="static fleet: an editor HOST:PORT (repeatable).")
SCORER_ADDRESS = Setting("scorer_address", help="static fleet: the scorer HOST:PORT.")
OUTPUT = Setting("output", help="Output dir (rerun on the same dir to resume).")
PROGRESS = Setting("progress", choices=("auto", "bars", "plain"), help="Live bars or plain lines.")
STOP_AFTER_FAILURES = Setting("stop_after_failures", type=int,
                              help="Stop when the first K samples fail for good with the same error, in the editing "
                                   "or the judging (0: never).")
