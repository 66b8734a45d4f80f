"""The orchestrator's flags for the settings defined once in editfleet_common/settings.py.

Each flag's type, choices and run config key come from its Setting; its name is the orchestrator's
own (it sets two services, hence `--editor-model` and `--judge-model`), and so is its help where it
gives one (else the Setting's). A table of SettingFlags gives a command its click options (`options`)
and the run config overrides of the values given (`overrides`), so adding a setting to a command is
one line here; no command writes a flag of a run config key by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import click

from editfleet_common import settings
from editfleet_common.settings import Setting


@dataclass(frozen=True)
class SettingFlag:
    section: str            # the run config section (editor, judge, benchmark, devices, fleet); "": top level
    setting: Setting
    flag: str
    help: str | None = None  # None: the Setting's
    click_type: Any = None  # where click should check more than the Setting's type (a folder, a path, a range)
    metavar: str | None = None
    aliases: tuple[str, ...] = ()  # more names of the flag (-o)
    # the value given -> {key of the section: value} (a list from commas, --size's width and height);
    # default: {the Setting's key: the value}
    parse: Callable[[Any], dict[str, Any]] | None = None
    show_default: bool = False  # --help shows the run config's default (the flag itself defaults to unset)

    @property
    def key(self) -> str:
        return f"{self.section}.{self.setting.key}" if self.section else self.setting.key

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def option(self):
        kwargs: dict[str, Any] = {"help": self.setting.help if self.help is None else self.help}
        if self.click_type is not None:
            kwargs["type"] = self.click_type
        elif self.setting.choices:
            kwargs["type"] = click.Choice(list(self.setting.choices))
        elif self.setting.type in (int, float):
            kwargs["type"] = self.setting.type
        if self.setting.repeat:
            kwargs["multiple"] = True
        if self.metavar:
            kwargs["metavar"] = self.metavar
        if self.show_default:
            kwargs.update(cls=ConfigDefaultOption, config_default=config_default(self.key))
        return click.option(self.flag, *self.aliases, self.dest, **kwargs)

    def value(self, flags: dict) -> Any:
        """The value given on the command line (None: not given; a repeated flag: its list)."""
        given = flags.get(self.dest)
        if self.setting.repeat:
            return list(given) if given else None
        return given

    def overrides(self, flags: dict) -> dict[str, Any]:
        """Run config key -> value given (None where not given)."""
        value = self.value(flags)
        if self.parse is None:
            return {self.key: value}
        prefix = f"{self.section}." if self.section else ""
        return {f"{prefix}{key}": item for key, item in self.parse(value).items()} if value is not None else {}


class ConfigDefaultOption(click.Option):
    """An option left unset when not given (so that a run config's value stands), whose --help shows the
    run config key's default as its own."""

    def __init__(self, *args, config_default: Any = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.config_default = config_default

    def get_help_extra(self, ctx):
        extra = super().get_help_extra(ctx)
        extra["default"] = str(self.config_default)
        return extra


def config_default(key: str) -> Any:
    """The default of a run config key (orchestrator/config.py's dataclasses)."""
    import dataclasses

    from .config import SECTIONS, RunConfig

    *section, name = key.split(".")
    cls = SECTIONS[section[0]] if section else RunConfig
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()


def options(table):
    """A decorator adding the table's flags to a click command, in table order."""
    def apply(fn):
        for flag in reversed(table):
            fn = flag.option()(fn)
        return fn
    return apply


def overrides(table, flags: dict) -> dict[str, Any]:
    """Run config key -> value given, for every flag of the table (None where not given)."""
    out: dict[str, Any] = {}
    for flag in table:
        out.update(flag.overrides(flags))
    return out


def _categories(text: str) -> dict[str, Any]:
    return {"categories": [c.strip() for c in text.split(",") if c.strip()]} if text else {}


def _size(text: str) -> dict[str, Any]:
    from .config import parse_size

    if not text:
        return {}
    width, height = parse_size(text)
    return {"width": width, "height": height}


def csv_ints(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.UsageError(f"{flag} takes comma-separated integers, e.g. 0,1,2,3; got {text!r}") from None


# The benchmark's options, also of `validate` and `import` (which read a benchmark without a run config)
LANGUAGE_FLAG = SettingFlag("benchmark", settings.LANGUAGE, "--language", show_default=True)
IMAGE_ROOT_FLAG = SettingFlag("benchmark", settings.IMAGE_ROOT, "--image-root")

# The run config keys `orchestrator run` sets besides the services' settings (RUN_FLAGS), in --help order
GPUS_FLAG = SettingFlag("devices", settings.DEVICE_GPUS, "--gpus",
                        parse=lambda text: {"gpus": csv_ints(text, "--gpus")})
EDITORS_FLAG = SettingFlag("devices", settings.EDITORS, "--editors")
RUN_CONFIG_FLAGS = (
    SettingFlag("benchmark", settings.BENCHMARK_PATH, "--benchmark"),
    SettingFlag("benchmark", settings.BENCHMARK_FORMAT, "--benchmark-format"),
    IMAGE_ROOT_FLAG,
    SettingFlag("benchmark", settings.CATEGORIES, "--categories", parse=_categories),
    SettingFlag("benchmark", settings.LIMIT, "--limit", click_type=click.IntRange(min=1)),
    LANGUAGE_FLAG,
    SettingFlag("editor", settings.STEPS, "--steps"),
    SettingFlag("editor", settings.GUIDANCE, "--guidance"),
    SettingFlag("editor", settings.NEGATIVE_PROMPT, "--negative-prompt"),
    SettingFlag("editor", settings.SEED, "--seed"),
    SettingFlag("editor", settings.WIDTH, "--size", "Output size WIDTHxHEIGHT (or N for square).", click_type=str,
                parse=_size),
    SettingFlag("judge", settings.PROTOCOL, "--protocol"),
    GPUS_FLAG,
    EDITORS_FLAG,
    SettingFlag("fleet", settings.FLEET_KIND, "--fleet"),
    SettingFlag("fleet", settings.EDITOR_ADDRESSES, "--editor-address"),
    SettingFlag("fleet", settings.SCORER_ADDRESS, "--scorer-address"),
    SettingFlag("", settings.OUTPUT, "--output", aliases=("-o",)),
    SettingFlag("", settings.PROGRESS, "--progress"),
    SettingFlag("judge", settings.FAILURES, "--failures"),
)


JUDGE_MAX_NEW_TOKENS = SettingFlag("judge", settings.MAX_NEW_TOKENS, "--judge-max-new-tokens",
                                   "The judge's longest reply (default: the protocol's own budget).")
JUDGE_DINO_MODEL = SettingFlag("judge", settings.DINO_MODEL, "--judge-dino-model",
                               "metrics judge: the DINO ViT-S/16 model, local path or hub id (--judge-model is "
                               "then CLIP; default: facebook/dino-vits16).")

# `orchestrator run` (and `validate`'s run options)
RUN_FLAGS = (
    SettingFlag("editor", settings.MODEL, "--editor-model", "Editor model: local path or hub id."),
    SettingFlag("editor", settings.SPEED_MODE, "--speed-mode",
                "Editor speed mode on GPUs (default: same outputs, faster; fast: FP8 + cache, opt-in)."),
    SettingFlag("editor", settings.COMPILE_CACHE, "--compile-cache",
                "Compiled modes: directory of portable compile caches the editors share (warm starts).",
                click_type=click.Path(file_okay=False)),
    SettingFlag("editor", settings.THREADS, "--threads", "CPU threads per editor (fixed: results don't depend on N)."),
    SettingFlag("editor", settings.LORAS, "--lora",
                "LoRA adapter fused into the editors' model at start (repeatable; replaces editor.loras).",
                metavar="PATH[:SCALE]"),
    SettingFlag("editor", settings.EDITOR_BACKEND, "--editor-backend",
                "Editor: a local diffusers pipeline, or a model behind an API (openai-images, openai-chat-image)."),
    SettingFlag("editor", settings.EDITOR_PROVIDER, "--editor-provider",
                "API editor: the provider's shape (editor_service/providers/: openai, openrouter, ...)."),
    SettingFlag("editor", settings.BASE_URL, "--editor-base-url",
                "API editor: the endpoint URL, e.g. https://api.openai.com/v1."),
    SettingFlag("editor", settings.MAX_CONCURRENCY, "--editor-max-concurrency",
                "API editor: requests in flight at once (the editing slots)."),
    SettingFlag("judge", settings.MODEL, "--judge-model", "Judge model: local path or hub id."),
    SettingFlag("judge", settings.BACKEND, "--judge-backend",
                "Judge: a local model (transformers), an OpenAI-compatible endpoint (openai) or reference metrics "
                "(metrics: CLIP and DINO)."),
    SettingFlag("judge", settings.BASE_URL, "--judge-base-url",
                "openai judge: the endpoint URL, e.g. https://api.openai.com/v1."),
    SettingFlag("judge", settings.MAX_BATCH, "--max-batch", "Judge batch size."),
    SettingFlag("judge", settings.GPUS, "--judge-gpus-per-replica",
                "A judge larger than one GPU: each replica's weights split over this many GPUs of the run."),
    JUDGE_MAX_NEW_TOKENS,
    JUDGE_DINO_MODEL,
)

# `orchestrator score` (another judge for a run's saved edits: unset flags keep the run's)
SCORE_FLAGS = (
    SettingFlag("judge", settings.MODEL, "--judge-model", "Judge model (default: the run's)."),
    SettingFlag("judge", settings.MAX_BATCH, "--max-batch", "Judge batch size (default: the run's)."),
    SettingFlag("judge", settings.LOAD_FORMAT, "--judge-load-format", "dummy: random weights (performance work)."),
    SettingFlag("judge", settings.BACKEND, "--judge-backend",
                "A local judge model, or an OpenAI-compatible endpoint (default: the run's)."),
    SettingFlag("judge", settings.BASE_URL, "--judge-base-url", "openai judge: the endpoint URL."),
    SettingFlag("judge", settings.API_KEY_ENV, "--api-key-env",
                "openai judge: the NAME of the environment variable holding the key."),
    JUDGE_DINO_MODEL,
)

# The run config keys `orchestrator score` sets besides the judge's settings (SCORE_FLAGS), in --help order
SCORE_CONFIG_FLAGS = (
    SettingFlag("judge", settings.PROTOCOL, "--protocol", "Judge protocol (default: the run's)."),
    SettingFlag("devices", settings.JUDGE_GPU, "--gpu"),
    SettingFlag("fleet", settings.FLEET_KIND, "--fleet"),
    SettingFlag("fleet", settings.SCORER_ADDRESS, "--scorer-address"),
    SettingFlag("", settings.PROGRESS, "--progress"),
    SettingFlag("judge", settings.FAILURES, "--failures"),
    SettingFlag("judge", settings.REPEATS, "--repeats", click_type=click.IntRange(min=1)),
    JUDGE_MAX_NEW_TOKENS,
)

# --stop-after-failures (stop_after_failures), said of what each command does
RUN_STOP_AFTER_FAILURES = SettingFlag(
    "", settings.STOP_AFTER_FAILURES, "--stop-after-failures",
    "Stop when the first K samples fail for good with the same error (0: never).",
    click_type=click.IntRange(min=0), metavar="K", show_default=True)
SCORE_STOP_AFTER_FAILURES = SettingFlag(
    "", settings.STOP_AFTER_FAILURES, "--stop-after-failures",
    "Stop when the first K judgements are INVALID for the same reason (0: never).",
    click_type=click.IntRange(min=0), metavar="K", show_default=True)
