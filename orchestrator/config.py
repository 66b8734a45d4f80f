"""Run configuration: a YAML file and command-line overrides, checked strictly.

Relative paths in a YAML file are relative to that file's folder (a model value that is not an
existing path there is taken as a model id, e.g. "Qwen/Qwen-Image-Edit"); paths given as flags are
relative to the working directory.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from editfleet_common.settings import EDITOR_BACKENDS, FAILURES, JUDGE_BACKENDS, LOAD_FORMATS, PROGRESS, SPEED_MODES

from .judge_protocol import find_protocol

# A key set by an `orchestrator` flag has its meaning in its Setting (editfleet_common/settings.py), not in a
# comment here (docs/reference/config.md shows the Setting's help where a key has no comment).


class ConfigError(Exception):
    """A bad configuration value, named by file and key."""


@dataclass
class BenchmarkConfig:
    path: str | None = None
    format: str = "auto"
    categories: list[str] | None = None
    limit: int | None = None
    language: str = "en"
    image_root: str | None = None


@dataclass
class EditorConfig:
    model: str | None = None
    steps: int = 0
    guidance: float | None = None
    negative_prompt: str | None = None
    seed: int = 0
    width: int = 0
    height: int = 0
    extras: dict[str, Any] = field(default_factory=dict)  # pipeline-specific call arguments
    loras: list[dict] = field(default_factory=list)  # [{path, scale}]: LoRA adapters fused at the editors' start
    scheduler: dict[str, Any] = field(default_factory=dict)  # scheduler config override ({"_class_name"?, ...})
    dtype: str | None = None
    load_format: str = "auto"       # auto | dummy
    speed_mode: str = "default"     # reference | default | fast (GPU only; see editor_service/speed.py)
    threads: int = 1                # CPU threads per editor: fixed so results don't depend on N
    compile_cache: str | None = None  # compiled modes: portable compile caches shared by the editors (a directory)
    server_args: list[str] = field(default_factory=list)  # extra editor_service flags
    max_attempts: int = 3           # per sample, over editors that die or answer UNAVAILABLE
    timeout_s: float = 1800.0       # deadline of one edit call
    tls: dict[str, Any] = field(default_factory=dict)  # {ca, cert, key, server_name}: (m)TLS to the editors
    # An editor behind an API (backend openai-images / openai-chat-image; editor_service/api_editor/):
    # model is then the model id sent; one editor process with max_concurrency request slots
    backend: str = "diffusers"      # diffusers | openai-images | openai-chat-image
    provider: str | None = None     # the provider's shape: editor_service/providers/<name>.json or a path
    base_url: str | None = None     # e.g. https://api.openai.com/v1
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the environment variable holding the key ('': none)
    max_concurrency: int = 4        # requests in flight at once (the editing slots)
    request_timeout_s: float = 300.0  # seconds per request (a stall is retried)
    max_retries: int = 5            # retries of a request (429, 5xx, timeouts, dropped connections, cut replies)


@dataclass
class JudgeConfig:
    backend: str = "transformers"   # transformers: a local VLM | openai: an OpenAI-compatible endpoint
    model: str | None = None        # openai: the model id sent (the dated one), recorded as given and as served
    base_url: str | None = None     # openai: e.g. https://api.openai.com/v1
    api_key_env: str = "OPENAI_API_KEY"  # openai: the NAME of the environment variable holding the key
    max_concurrency: int = 8        # openai: requests in flight at once
    request_timeout_s: float = 120.0  # openai: seconds per request
    max_retries: int = 5            # openai: retries of a request (429, 5xx, timeouts, dropped connections)
    dino_model: str | None = None
    replicas: int = 0               # judge processes for the judging phase; 0: one per gpus_per_replica GPUs of the run (else 1)
    gpus_per_replica: int = 1       # a judge larger than one GPU: each replica's weights split over this many GPUs
    protocol: str = ""
    max_batch: int = 4
    max_new_tokens: int | None = None  # the longest reply; None: the protocol's own budget, else 128 (settings.reply_budget)
    max_in_flight: int = 0          # requests on the stream at once; 0: 4 x max_batch
    threads: int = 2
    dtype: str | None = None
    load_format: str = "auto"
    server_args: list[str] = field(default_factory=list)
    max_attempts: int = 3           # scorer restarts / reconnects before giving up
    stall_timeout_s: float = 600.0  # no result for this long while samples are out: the judge is stalled (0: wait for ever)
    failures: str = "exclude"
    repeats: int = 1
    prestart: bool = True           # local fleet: stage the judge in host memory while editing (RAM: ~its weights)
    tls: dict[str, Any] = field(default_factory=dict)  # {ca, cert, key, server_name}: (m)TLS to the judge


@dataclass
class DevicesConfig:
    gpus: list[int] | None = None
    editors: int | None = None
    judge_gpu: int | None = None


@dataclass
class FleetConfig:
    kind: str = "local"
    editor_addresses: list[str] = field(default_factory=list)
    scorer_address: str | None = None
    options: dict[str, Any] = field(default_factory=dict)        # fleet-specific (e.g. kubernetes)


@dataclass
class RunConfig:
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    editor: EditorConfig = field(default_factory=EditorConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    devices: DevicesConfig = field(default_factory=DevicesConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    output: str | None = None
    progress: str = "auto"
    stop_after_failures: int = 3
    suites_dir: str | None = None   # a lab's own suite folder(s), beside the built-in ones (suites/catalog.py)

    def absolutize(self) -> "RunConfig":
        """Paths made absolute (models only when they exist locally), so that a run's manifest
        means the same thing from any working directory."""
        if self.benchmark.path:
            self.benchmark.path = os.path.abspath(self.benchmark.path)
        if self.benchmark.image_root:
            self.benchmark.image_root = os.path.abspath(self.benchmark.image_root)
        if self.output:
            self.output = os.path.abspath(self.output)
        if self.suites_dir:
            self.suites_dir = os.path.abspath(self.suites_dir)
        if self.editor.compile_cache:
            self.editor.compile_cache = os.path.abspath(self.editor.compile_cache)
        for section in (self.editor, self.judge):
            if section.model and Path(section.model).exists():
                section.model = os.path.abspath(section.model)
        if self.judge.dino_model and Path(self.judge.dino_model).exists():
            self.judge.dino_model = os.path.abspath(self.judge.dino_model)
        for lora in self.editor.loras:
            if Path(lora["path"]).exists():
                lora["path"] = os.path.abspath(lora["path"])
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def device_kind(self) -> str:
        return "gpu" if self.devices.gpus else "cpu"

    @property
    def judge_replicas(self) -> int:
        """judge.replicas, or by default one per judge.gpus_per_replica GPUs of the run once the editors
        are down; one on the CPU, on a chosen devices.judge_gpu, and for an API judge (its concurrency
        is max_concurrency)."""
        if self.judge.replicas:
            return self.judge.replicas
        if self.judge.backend != "transformers" or self.devices.judge_gpu is not None or not self.devices.gpus:
            return 1
        return max(1, len(self.devices.gpus) // self.judge.gpus_per_replica)

    def judge_replica_gpus(self, index: int) -> list[int] | None:
        """The GPUs of judge replica `index` (CUDA_VISIBLE_DEVICES): devices.judge_gpu, or its own
        judge.gpus_per_replica consecutive GPUs of the run; None on the CPU."""
        if self.devices.judge_gpu is not None:
            return [self.devices.judge_gpu]
        if not self.devices.gpus:
            return None
        k = self.judge.gpus_per_replica
        return list(self.devices.gpus[index * k:(index + 1) * k])

    @property
    def api_editor(self) -> bool:
        """The editor is a model behind an API: request slots, no devices."""
        return self.editor.backend != "diffusers"

    @property
    def editor_count(self) -> int:
        if self.api_editor:  # an API editor is a fleet of request slots, not of devices
            return self.editor.max_concurrency
        if self.devices.gpus:
            return len(self.devices.gpus)
        if self.fleet.kind == "static" and self.fleet.editor_addresses and not self.devices.editors:
            return len(self.fleet.editor_addresses)
        return self.devices.editors or 1

    def edit_settings(self) -> dict:
        """What decides the edited pixels: a resumed run must use exactly these."""
        e = self.editor
        settings = {
            "model": e.model, "steps": e.steps, "guidance": e.guidance, "negative_prompt": e.negative_prompt,
            "seed": e.seed, "width": e.width, "height": e.height, "extras": e.extras, "dtype": e.dtype,
            "load_format": e.load_format, "speed_mode": e.speed_mode, "threads": e.threads,
        }
        # only when set: output dirs made before adapters existed resume as before
        if e.loras:
            settings["loras"] = [{**lora, "sha256": _file_sha256(lora["path"])} for lora in e.loras]
        if e.scheduler:
            settings["scheduler"] = e.scheduler
        if self.api_editor:  # (absent for local editors: older run dirs resume as they were)
            settings.update(backend=e.backend, provider=e.provider, base_url=e.base_url)
        return settings

    def judge_settings(self) -> dict:
        """What decides the scores: a resumed run must use these (re-judge with `score` instead)."""
        settings = {"model": self.judge.model, "protocol": self.judge.protocol, "dtype": self.judge.dtype,
                    "load_format": self.judge.load_format}
        if self.judge.backend != "transformers":  # (absent for the default: older run dirs resume as they were)
            settings.update(backend=self.judge.backend, base_url=self.judge.base_url)
        if self.judge.backend == "metrics":
            settings["dino_model"] = self.judge.dino_model
        return settings


SECTIONS = {
    "benchmark": BenchmarkConfig,
    "editor": EditorConfig,
    "judge": JudgeConfig,
    "devices": DevicesConfig,
    "fleet": FleetConfig,
}
CHOICES = {
    ("editor", "backend"): EDITOR_BACKENDS,
    ("editor", "load_format"): LOAD_FORMATS,
    ("editor", "speed_mode"): SPEED_MODES,
    ("judge", "load_format"): LOAD_FORMATS,
    ("judge", "backend"): JUDGE_BACKENDS,
    ("judge", "failures"): FAILURES.choices,
    ("", "progress"): PROGRESS.choices,
}
PATH_KEYS = {("benchmark", "path"), ("benchmark", "image_root"), ("", "output"), ("", "suites_dir"),
             ("editor", "compile_cache")}
TLS_KEYS = ("ca", "cert", "key", "server_name")
TLS_FILES = ("ca", "cert", "key")
MODEL_KEYS = {("editor", "model"), ("judge", "model"), ("judge", "dino_model")}


def load_yaml(path: str | Path) -> dict:
    from editfleet_common import safe_yaml  # size, expanded aliases and nesting bounded: one line, not a hang

    path = Path(path)
    try:
        text = safe_yaml.read_text(path)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, safe_yaml.YamlLimitError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        data = safe_yaml.safe_load(text) or {}
    except safe_yaml.YamlLimitError as exc:
        raise ConfigError(f"{path}: refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return _resolve_paths(data, path.resolve().parent, str(path))


def _resolve_paths(data: dict, base: Path, origin: str) -> dict:
    data = copy.deepcopy(data)
    for section, key in PATH_KEYS | MODEL_KEYS:
        holder = data.get(section) if section else data
        if not isinstance(holder, dict) or not isinstance(holder.get(key), str):
            continue
        value = holder[key]
        candidate = base / value
        if (section, key) in PATH_KEYS:
            holder[key] = str(candidate) if not Path(value).is_absolute() else value
        elif not Path(value).is_absolute() and (candidate.exists() or value.startswith(".")):
            holder[key] = str(candidate)
    editor = data.get("editor")
    if isinstance(editor, dict) and isinstance(editor.get("loras"), list):
        editor["loras"] = [_resolve_lora(item, base) for item in editor["loras"]]
    for section in ("editor", "judge"):
        tls = (data.get(section) or {}).get("tls") if isinstance(data.get(section), dict) else None
        if isinstance(tls, dict):
            for key in TLS_FILES:
                if isinstance(tls.get(key), str) and not Path(tls[key]).is_absolute():
                    tls[key] = str(base / tls[key])
    data.setdefault("_origin", origin)
    return data


def _resolve_lora(item, base: Path):
    """A LoRA entry's path, relative to the config file's folder (other shapes are checked later)."""
    if isinstance(item, dict) and isinstance(item.get("path"), str) and not Path(item["path"]).is_absolute():
        return {**item, "path": str(base / item["path"])}
    if isinstance(item, str):
        lora = parse_lora(item)
        return {**lora, "path": lora["path"] if Path(lora["path"]).is_absolute() else str(base / lora["path"])}
    return item


def parse_lora(text: str) -> dict:
    """`PATH` or `PATH:SCALE` (--lora, and string entries of editor.loras) as {path, scale}."""
    path, sep, tail = text.rpartition(":")
    if sep and path:
        try:
            return {"path": path, "scale": float(tail)}
        except ValueError:
            pass  # a colon inside the path
    return {"path": text, "scale": 1.0}


def _file_sha256(path: str) -> str | None:
    """A LoRA file's sha256 (None where it is not on this machine: a static or Kubernetes fleet's editors
    report their own in the model identity)."""
    import hashlib

    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def merge_overrides(data: dict, overrides: dict[str, Any]) -> dict:
    """Apply dotted-key overrides ("editor.steps": 4); None values leave the config alone."""
    data = copy.deepcopy(data)
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, key = dotted.split(".")
        holder = data
        for part in parents:
            holder = holder.setdefault(part, {})
            if not isinstance(holder, dict):
                raise ConfigError(f"{part}: expected a mapping")
        holder[key] = value
    return data


def build_config(data: dict) -> RunConfig:
    origin = data.pop("_origin", "config") if isinstance(data, dict) else "config"
    top_fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    unknown = [k for k in data if k not in top_fields]
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(top_fields)})")
    kwargs = {}
    for name, value in data.items():
        if name in SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: '{name}' must be a mapping, got {type(value).__name__}")
            kwargs[name] = _build_section(SECTIONS[name], value, name, origin)
        else:
            kwargs[name] = _coerce(top_fields[name], value, name, origin)
            _check_choice("", name, kwargs[name], origin)
    config = RunConfig(**kwargs)
    _check_suites(config, origin)
    _check(config, origin)
    if config.judge.max_new_tokens is None:
        config.judge.max_new_tokens = protocol_reply_budget(config.judge)
    return config


def _check_suites(config: RunConfig, origin: str) -> None:
    """The lab's own suites of `suites_dir` join the catalog (for this process and the services it
    starts); benchmark.format names a suite of it."""
    from suites.catalog import catalog, use
    from suites.spec import SuiteError

    try:
        if config.suites_dir:
            use(config.suites_dir)
        names = catalog().names()
    except SuiteError as exc:
        raise ConfigError(f"{origin}: suites_dir: {exc}") from None
    if config.benchmark.format not in ("auto", *names):
        raise ConfigError(f"{origin}: benchmark.format must be auto or a suite's name ({', '.join(names)}), "
                          f"got {config.benchmark.format!r}")


def protocol_reply_budget(judge: "JudgeConfig") -> int | None:
    """The reply budget the judge protocol's file names (`max_new_tokens:`, the suite's own, e.g.
    KRIS-Bench's 1000), read where the judge reads it (judge_protocol.find_protocol); None where it
    names none (the judge's default then)."""
    protocol = find_protocol(judge) if judge.protocol else None
    return protocol.max_new_tokens if protocol else None


def as_named(config: RunConfig) -> dict:
    """A run's recorded config (its manifest's) as a dict to build another from (`score`, `arena`), with
    judge.max_new_tokens unset where it is its protocol's own budget, filled in when the run started: a
    re-judge with another protocol then gets that protocol's (settings.reply_budget), not the run's
    protocol's. A budget the run named itself is kept (one equal to its protocol's own reads as taken
    from it)."""
    data = config.to_dict()
    if config.judge.max_new_tokens is not None and config.judge.max_new_tokens == protocol_reply_budget(config.judge):
        data["judge"]["max_new_tokens"] = None
    return data


def _build_section(cls, values: dict, section: str, origin: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise ConfigError(
            f"{origin}: unknown key(s) {', '.join(f'{section}.{k}' for k in unknown)} "
            f"(known in '{section}': {', '.join(fields)})"
        )
    kwargs = {}
    for key, value in values.items():
        kwargs[key] = _coerce(fields[key], value, f"{section}.{key}", origin)
        _check_choice(section, key, kwargs[key], origin)
    return cls(**kwargs)


def _check_choice(section: str, key: str, value, origin: str) -> None:
    choices = CHOICES.get((section, key))
    if choices and value not in choices:
        name = f"{section}.{key}" if section else key
        raise ConfigError(f"{origin}: {name} must be one of {', '.join(choices)}, got {value!r}")


def _coerce(f: dataclasses.Field, value, name: str, origin: str):
    """Check a value against the field's annotation (a small set of types is used above)."""
    kind = str(f.type)
    if value is None:
        if "None" in kind:
            return None
        raise ConfigError(f"{origin}: {name} may not be empty")

    def fail(expected: str):
        raise ConfigError(f"{origin}: {name} must be {expected}, got {value!r}")

    if kind == "list[dict]":  # editor.loras: checked entry by entry in _check
        if not isinstance(value, list):
            fail("a list")
        return [parse_lora(v) if isinstance(v, str) else v for v in value]
    if kind.startswith("list"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            fail("a list")
        if "int" in kind:
            try:
                return [int(v) for v in value]
            except (TypeError, ValueError):
                fail("a list of integers")
        return [str(v) for v in value]
    if kind.startswith("dict"):
        if not isinstance(value, dict):
            fail("a mapping")
        return dict(value)
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            fail("an integer")
        try:
            return int(value)
        except ValueError:
            fail("an integer")
    if kind.startswith("float"):
        if isinstance(value, bool):
            fail("a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            fail("a number")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
        if isinstance(value, (str, int)) and str(value).lower() in words:
            return words[str(value).lower()]
        fail("true or false")
    if kind.startswith("str"):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            fail("a string")
        return str(value)
    return value


def _check_no_credentials(config: RunConfig, origin: str) -> None:
    """A credential in judge.base_url (user info, query, path: editfleet_common.redact.url_secrets), or
    in a URL among the services' extra flags, is refused before it is stored (manifest), passed on
    (the scorer's argv) or logged; the message names where, never the value."""
    from editfleet_common.redact import url_secrets

    places = [("judge.base_url", config.judge.base_url or "")]
    places += [(f"{section}.server_args", arg) for section, args in (("editor", config.editor.server_args),
                                                                   ("judge", config.judge.server_args))
               for arg in args if isinstance(arg, str) and "://" in arg]
    for key, url in places:
        found = url_secrets(url) if url else []
        if found:
            raise ConfigError(f"{origin}: {key} must not carry credentials ({', '.join(found)}): give "
                              "the key's variable name in judge.api_key_env; the endpoint's URL itself is "
                              "written to the run's manifest and logs")


def _check(config: RunConfig, origin: str) -> None:
    e, j, d, fl = config.editor, config.judge, config.devices, config.fleet
    for name, value, low in (
        ("editor.steps", e.steps, 0), ("editor.width", e.width, 0), ("editor.height", e.height, 0),
        ("editor.seed", e.seed, 0), ("editor.threads", e.threads, 1), ("editor.max_attempts", e.max_attempts, 1),
        ("judge.max_batch", j.max_batch, 1), ("judge.threads", j.threads, 1), ("judge.max_attempts", j.max_attempts, 1),
        ("judge.repeats", j.repeats, 1),
        ("judge.max_in_flight", j.max_in_flight, 0), ("judge.stall_timeout_s", j.stall_timeout_s, 0),
        ("judge.max_concurrency", j.max_concurrency, 1), ("judge.max_retries", j.max_retries, 0),
        ("judge.replicas", j.replicas, 0), ("judge.gpus_per_replica", j.gpus_per_replica, 1),
        ("stop_after_failures", config.stop_after_failures, 0),
    ):
        if value < low:
            raise ConfigError(f"{origin}: {name} must be >= {low}, got {value}")
    if j.request_timeout_s <= 0:
        raise ConfigError(f"{origin}: judge.request_timeout_s must be > 0, got {j.request_timeout_s}")
    _check_no_credentials(config, origin)
    if j.backend == "openai":
        from urllib.parse import urlparse

        url = urlparse(j.base_url or "")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"{origin}: judge.base_url must be the endpoint's http(s) URL (e.g. "
                              f"https://api.openai.com/v1) with judge.backend openai, got {j.base_url!r}")
        if not j.model:
            raise ConfigError(f"{origin}: judge.model is required with judge.backend openai (the model id to send)")
        if j.api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", j.api_key_env):
            raise ConfigError(f"{origin}: judge.api_key_env is the NAME of an environment variable "
                              "(letters, digits, _), not the key itself")
    if config.api_editor:
        _check_api_editor(e, origin)
    if j.gpus_per_replica > 1:
        if j.backend != "transformers" or d.judge_gpu is not None:
            raise ConfigError(f"{origin}: judge.gpus_per_replica {j.gpus_per_replica} splits a local judge over GPUs: "
                              "it needs judge.backend transformers, without devices.judge_gpu")
        if fl.kind == "local" and not d.gpus:
            raise ConfigError(f"{origin}: judge.gpus_per_replica {j.gpus_per_replica} needs the run's GPUs "
                              "(devices.gpus) on the local fleet")
        if fl.kind == "local" and len(d.gpus) < j.gpus_per_replica:
            raise ConfigError(f"{origin}: judge.gpus_per_replica {j.gpus_per_replica} is more than the run's GPUs {d.gpus}")
    if j.replicas > 1 and d.gpus and j.replicas * j.gpus_per_replica > len(d.gpus):
        each = (f" x judge.gpus_per_replica {j.gpus_per_replica}" if j.gpus_per_replica > 1 else "")
        raise ConfigError(f"{origin}: judge.replicas {j.replicas}{each} is more than the run's GPUs {d.gpus}"
                          + ("" if each else " (one GPU each)"))
    if j.replicas > 1 and d.judge_gpu is not None:
        raise ConfigError(f"{origin}: devices.judge_gpu puts the judge on one GPU: give it or judge.replicas > 1, not both")
    _check_loras(e.loras, fl.kind, origin)
    if e.seed >= 2**63:
        raise ConfigError(f"{origin}: editor.seed must be < 2**63")
    if (e.width == 0) != (e.height == 0):
        raise ConfigError(f"{origin}: editor.width and editor.height go together (both 0 or both set)")
    if config.benchmark.limit is not None and config.benchmark.limit < 1:
        raise ConfigError(f"{origin}: benchmark.limit must be >= 1")
    if d.gpus is not None and d.editors is not None:
        raise ConfigError(f"{origin}: give devices.gpus or devices.editors, not both")
    if d.gpus is not None and (not d.gpus or len(set(d.gpus)) != len(d.gpus) or min(d.gpus) < 0):
        raise ConfigError(f"{origin}: devices.gpus must be distinct GPU indices, got {d.gpus}")
    if d.editors is not None and d.editors < 1:
        raise ConfigError(f"{origin}: devices.editors must be >= 1")
    for section, tls in (("editor", e.tls), ("judge", j.tls)):
        _check_tls(section, tls, fl.kind, origin)
    if fl.kind == "static":
        if not fl.editor_addresses and not fl.scorer_address:
            raise ConfigError(f"{origin}: the static fleet needs fleet.editor_addresses (--editor-address) "
                              "and/or fleet.scorer_address (--scorer-address)")


def _check_api_editor(e: "EditorConfig", origin: str) -> None:
    """editor.backend openai-images / openai-chat-image: the endpoint without credentials in it, the model
    id, the key's variable NAME, and none of the local pipeline's own settings."""
    from urllib.parse import urlparse

    url = urlparse(e.base_url or "")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"{origin}: editor.base_url must be the endpoint's http(s) URL (e.g. https://api.openai.com/v1) "
                          f"with editor.backend {e.backend}, got {e.base_url!r}")
    from editfleet_common.redact import url_secrets

    found = url_secrets(e.base_url)
    if found:
        raise ConfigError(f"{origin}: editor.base_url must not carry credentials ({', '.join(found)}): give the key's "
                          "variable name in editor.api_key_env")
    if not e.model:
        raise ConfigError(f"{origin}: editor.model is required with editor.backend {e.backend} (the model id to send)")
    if e.api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", e.api_key_env):
        raise ConfigError(f"{origin}: editor.api_key_env is the NAME of an environment variable (letters, digits, _), "
                          "not the key itself")
    for name, value, low in (("editor.max_concurrency", e.max_concurrency, 1), ("editor.max_retries", e.max_retries, 0)):
        if value < low:
            raise ConfigError(f"{origin}: {name} must be >= {low}, got {value}")
    if e.request_timeout_s <= 0:
        raise ConfigError(f"{origin}: editor.request_timeout_s must be > 0, got {e.request_timeout_s}")
    local_only = [key for key, given in (("editor.loras", e.loras), ("editor.scheduler", e.scheduler),
                                         ("editor.compile_cache", e.compile_cache),
                                         ("editor.load_format dummy", e.load_format == "dummy")) if given]
    if local_only:
        raise ConfigError(f"{origin}: {', '.join(local_only)}: for a local pipeline, not editor.backend {e.backend}")


def _check_loras(loras: list, fleet_kind: str, origin: str) -> None:
    import math

    for index, lora in enumerate(loras):
        name = f"editor.loras[{index}]"
        if not isinstance(lora, dict):
            raise ConfigError(f"{origin}: {name} must be a mapping {{path, scale}} or 'PATH[:SCALE]', got {lora!r}")
        unknown = [k for k in lora if k not in ("path", "scale")]
        if unknown:
            raise ConfigError(f"{origin}: unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)} (known: path, scale)")
        if not isinstance(lora.get("path"), str) or not lora["path"]:
            raise ConfigError(f"{origin}: {name}.path is required (a .safetensors file)")
        scale = lora.setdefault("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise ConfigError(f"{origin}: {name}.scale must be a number, got {scale!r}")
        lora["scale"] = float(scale)
        # local editors read the file here; a static or Kubernetes fleet's editors have their own copy
        if fleet_kind == "local" and not os.path.isfile(lora["path"]):
            raise ConfigError(f"{origin}: {name}.path: no such file: {lora['path']}")


def _check_tls(section: str, tls: dict, fleet_kind: str, origin: str) -> None:
    if not tls:
        return
    unknown = [k for k in tls if k not in TLS_KEYS]
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(f'{section}.tls.{k}' for k in unknown)} "
                          f"(known: {', '.join(TLS_KEYS)})")
    if not tls.get("ca"):
        raise ConfigError(f"{origin}: {section}.tls.ca is required (the CA that signed the server certificate)")
    if bool(tls.get("cert")) != bool(tls.get("key")):
        raise ConfigError(f"{origin}: {section}.tls.cert and {section}.tls.key go together (mutual TLS)")
    for key in TLS_FILES:
        if tls.get(key) and not os.path.isfile(tls[key]):
            raise ConfigError(f"{origin}: {section}.tls.{key}: no such file: {tls[key]}")
    if fleet_kind == "local":
        raise ConfigError(f"{origin}: {section}.tls: the local fleet starts its services on loopback without TLS; "
                          "TLS is for services reached over a network (static or kubernetes fleet)")


def client_tls(tls: dict):
    """The channel credentials of an `editor.tls` / `judge.tls` section (None: plaintext)."""
    from editfleet_common.channels import ClientTls

    if not tls:
        return None
    return ClientTls(tls["ca"], tls.get("cert"), tls.get("key"), tls.get("server_name"))


def parse_size(text: str) -> tuple[int, int]:
    """'512x384' (width x height) or '512' (square)."""
    parts = text.lower().split("x")
    try:
        if len(parts) == 1:
            return int(parts[0]), int(parts[0])
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise ConfigError(f"--size must look like 512 or 512x384 (width x height), got {text!r}")
