"""A suite's declaration: one typed `Suite` in its folder's `__init__.py` (`SUITE = Suite(...)`), checked
when the catalog finds it (suites.catalog). Everything the orchestrator and the scorer know of a suite
comes from here; no list elsewhere names it.

A suite's parts are modules of its folder, each with a fixed shape, checked at load:

    data      (required) load(path, options) -> (samples, problems); looks_like(path, first_record) -> bool;
              FOLDER = True for a suite whose benchmark is a folder, "either" for one that reads a folder
              or a file (a Hugging Face dataset folder or its JSONL export), with digest(path) -> sha256 hex
    numbers   (optional) the suite's own headline numbers: headline(samples, edits, scores, failures_as=)
              -> dict, console(block) -> str, report_html(block) -> str
              optional scopes(samples) -> {name: samples}: the sample sets its numbers are means over
              where they are not one pool (MagicBrush's single-turn and multi-turn settings, Emu Edit's
              splits); `orchestrator compare` ranks the runs in each on its own, never pooled
    layout    (optional) its official scorer's on-disk layout, for export/import: DESCRIPTION,
              root(folder, method), edit_relpath(sample), extra_files(sample); optional encode(data,
              field=) and import_relpath(root, sample)
    rules     combine rules its protocols name (suites/shared/combine.py's Rule), by name
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from suites.shared.combine import Rule

HEADLINE_MEANS = ("micro_mean", "macro_mean")
PROTOCOL_EXTENSIONS = (".yaml", ".yml", ".json")

# Each part's required callables (and constants), for the load-time check.
DATA = ("load", "looks_like")
NUMBERS = ("headline", "console", "report_html")
LAYOUT = ("root", "edit_relpath", "extra_files")


class SuiteError(Exception):
    """A suite folder that cannot be used (named folder and what is wrong), or an unknown suite."""


@dataclass(frozen=True)
class Suite:
    name: str                  # the benchmark format's name: --benchmark-format, summary.json, manifests
    title: str                 # as the suite's authors write it ("KRIS-Bench")
    reads: str                 # the data it expects, in words (for `orchestrator suites` and errors)
    data: types.ModuleType
    default_protocol: str      # a run of this suite's data is judged with it unless another is named
    protocols: tuple[str, ...] = ()   # the protocol files of its folder, by name (<name>.yaml)
    numbers: types.ModuleType | None = None
    layout: types.ModuleType | None = None
    rules: Mapping[str, Rule] = field(default_factory=dict)
    headline_mean: str = "micro_mean"  # the overall mean its own report gives: pooled or per category
    options: tuple[str, ...] = ()      # benchmark options it reads (benchmark.language, ...)
    source: str = ""                   # where its data and official scripts come from
    detect_order: int = 50             # format detection tries lower first (catch-alls last)
    folder: Path = Path()              # set by the catalog: where it was found
    builtin: bool = True               # set by the catalog: shipped with editfleet, or a lab's own

    @property
    def is_folder(self) -> bool:
        """Its benchmark may be a folder (a release folder): FOLDER = True, or "either"."""
        return getattr(self.data, "FOLDER", False) in (True, "either")

    @property
    def takes_file(self) -> bool:
        """Its benchmark may be a file: FOLDER unset or False, or "either"."""
        return getattr(self.data, "FOLDER", False) in (False, "either")

    @property
    def protocol_paths(self) -> list[Path]:
        out = []
        for name in self.protocols:
            found = [self.folder / f"{name}{ext}" for ext in PROTOCOL_EXTENSIONS if (self.folder / f"{name}{ext}").is_file()]
            if len(found) != 1:
                raise SuiteError(f"{self.folder}: protocol {name!r} must be one file {name}.yaml (or .yml/.json), "
                                 f"found {len(found)}")
            out.append(found[0])
        return out

    def check(self) -> None:
        """The declaration's own consistency (the catalog checks what spans suites); raises SuiteError."""
        where = f"suite {self.name!r} ({self.folder})"
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise SuiteError(f"{where}: name must be letters, digits, '-' or '_'")
        if self.headline_mean not in HEADLINE_MEANS:
            raise SuiteError(f"{where}: headline_mean must be one of {', '.join(HEADLINE_MEANS)}")
        for part, module, needed in (("data", self.data, DATA), ("numbers", self.numbers, NUMBERS),
                                     ("layout", self.layout, LAYOUT)):
            if module is None:
                if part == "data":
                    raise SuiteError(f"{where}: data (its loader module) is required")
                continue
            missing = [name for name in needed if not callable(getattr(module, name, None))]
            if missing:
                raise SuiteError(f"{where}: its {part} module {module.__name__} lacks {', '.join(missing)}")
        if getattr(self.data, "FOLDER", False) not in (True, False, "either"):
            raise SuiteError(f"{where}: its data module's FOLDER must be True, False or \"either\"")
        if self.is_folder and not callable(getattr(self.data, "digest", None)):
            raise SuiteError(f"{where}: a folder benchmark's data module needs digest(path)")
        if self.layout is not None and not isinstance(getattr(self.layout, "DESCRIPTION", None), str):
            raise SuiteError(f"{where}: its layout module needs DESCRIPTION (the layout in words)")
        for name, rule in self.rules.items():
            if not isinstance(rule, Rule):
                raise SuiteError(f"{where}: rules[{name!r}] must be a suites.shared.combine.Rule")
        self.protocol_paths  # noqa: B018 - each declared protocol file is there, once
