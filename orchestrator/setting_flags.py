"""The orchestrator's flags for the run-time settings defined once in editfleet_common/settings.py.

Each flag's type, choices and run config key come from its Setting; its name and help are the
orchestrator's own (it sets two services, hence `--editor-model` and `--judge-model`). A table of
SettingFlags gives a command its click options (`options`) and the run config overrides of the values
given (`overrides`), so adding a setting to a command is one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from editfleet_common import settings
from editfleet_common.settings import Setting


@dataclass(frozen=True)
class SettingFlag:
    section: str            # the run config section: editor or judge
    setting: Setting
    flag: str
    help: str
    click_type: Any = None  # where click should check more than the Setting's type (a folder, a path)
    metavar: str | None = None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.setting.key}"

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def option(self):
        kwargs: dict[str, Any] = {"help": self.help}
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
        return click.option(self.flag, self.dest, **kwargs)

    def value(self, flags: dict) -> Any:
        """The value given on the command line (None: not given; a repeated flag: its list)."""
        given = flags.get(self.dest)
        if self.setting.repeat:
            return list(given) if given else None
        return given


def options(table):
    """A decorator adding the table's flags to a click command, in table order."""
    def apply(fn):
        for flag in reversed(table):
            fn = flag.option()(fn)
        return fn
    return apply


def overrides(table, flags: dict) -> dict[str, Any]:
    """Run config key -> value given, for every flag of the table (None where not given)."""
    return {flag.key: flag.value(flags) for flag in table}


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
                "Judge: a local model (transformers) or an OpenAI-compatible endpoint (openai)."),
    SettingFlag("judge", settings.BASE_URL, "--judge-base-url",
                "openai judge: the endpoint URL, e.g. https://api.openai.com/v1."),
    SettingFlag("judge", settings.MAX_BATCH, "--max-batch", "Judge batch size."),
    SettingFlag("judge", settings.GPUS, "--judge-gpus-per-replica",
                "A judge larger than one GPU: each replica's weights split over this many GPUs of the run."),
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
)
