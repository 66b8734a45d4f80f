"""The suites editfleet knows, found by discovery: every folder of this package holding a suite
(`__init__.py` with `SUITE = Suite(...)`), then a lab's own, from the folders named by `--suites-dir`
(the orchestrator's and the scorer's flag, the run config's `suites_dir`) and by the environment
variable EDITFLEET_SUITES_DIR (several joined with os.pathsep). Such a folder is one suite's folder or
holds several. Each suite is checked when found (suites.spec.Suite.check) and against the others
here: names, protocol names and combine rules are each defined once.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from suites.shared.combine import GENERIC_RULES, Rule
from suites.spec import Suite, SuiteError

ENV = "EDITFLEET_SUITES_DIR"
BUILTIN_ROOT = Path(__file__).resolve().parent
NOT_SUITES = ("shared", "__pycache__")


@dataclass(frozen=True)
class Catalog:
    suites: dict[str, Suite]     # by name, in format-detection order
    rules: dict[str, Rule]       # every combine rule a protocol may name
    dirs: tuple[Path, ...]       # the lab's own folders searched (built-ins not listed)

    def get(self, name: str) -> Suite:
        try:
            return self.suites[name]
        except KeyError:
            raise SuiteError(f"unknown suite {name!r}; known: {', '.join(self.suites)}"
                             + ("" if self.dirs else f" (a lab's own suites: --suites-dir or {ENV})")) from None

    def names(self) -> list[str]:
        return list(self.suites)

    def protocol_files(self) -> list[Path]:
        """Every suite's protocol files, in catalog order."""
        return [path for suite in self.suites.values() for path in suite.protocol_paths]

    def protocol_names(self) -> list[str]:
        return [name for suite in self.suites.values() for name in suite.protocols]


def suite_dirs(extra: list[str | Path] | tuple = ()) -> tuple[Path, ...]:
    """The lab's own suite folders: those given, then EDITFLEET_SUITES_DIR's; each resolved, once."""
    given = [*map(Path, extra), *(Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p)]
    out: list[Path] = []
    for path in given:
        path = path.expanduser().resolve()
        if path not in out:
            out.append(path)
    return tuple(out)


def use(*dirs: str | Path) -> None:
    """Make these folders' suites known to this process and to the services it starts (through
    EDITFLEET_SUITES_DIR, which they inherit)."""
    current = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    added = [str(Path(d).expanduser().resolve()) for d in dirs]
    os.environ[ENV] = os.pathsep.join(dict.fromkeys([*added, *current]))


def catalog(extra_dirs: list[str | Path] | tuple = ()) -> Catalog:
    """The built-in suites and the lab's own (extra_dirs, then EDITFLEET_SUITES_DIR); SuiteError names
    a folder that cannot be used."""
    return _discover(suite_dirs(extra_dirs))


@functools.lru_cache(maxsize=8)
def _discover(dirs: tuple[Path, ...]) -> Catalog:
    found: list[Suite] = []
    for folder in sorted(p for p in BUILTIN_ROOT.iterdir() if (p / "__init__.py").is_file() and p.name not in NOT_SUITES):
        found.append(_load(folder, importlib.import_module(f"suites.{folder.name}"), builtin=True))
    for directory in dirs:
        if not directory.is_dir():
            raise SuiteError(f"suites folder {directory} does not exist (--suites-dir / {ENV})")
        folders = [directory] if (directory / "__init__.py").is_file() else sorted(
            p for p in directory.iterdir() if (p / "__init__.py").is_file() and p.name not in NOT_SUITES)
        if not folders:
            raise SuiteError(f"{directory}: no suite folder in it (a folder with __init__.py declaring SUITE)")
        for folder in folders:
            found.append(_load(folder, _import_outside(folder), builtin=False))
    suites: dict[str, Suite] = {}
    rules: dict[str, Rule] = dict(GENERIC_RULES)
    rule_owner = {name: "suites/shared/combine.py" for name in GENERIC_RULES}
    protocol_owner: dict[str, Path] = {}
    for suite in sorted(found, key=lambda s: (s.detect_order, s.name)):
        if suite.name in suites:
            raise SuiteError(f"suite {suite.name!r} defined twice: {suites[suite.name].folder} and {suite.folder}")
        suites[suite.name] = suite
        for name, rule in suite.rules.items():
            if name in rules:
                raise SuiteError(f"combine rule {name!r} defined twice: {rule_owner[name]} and {suite.folder}")
            rules[name], rule_owner[name] = rule, str(suite.folder)
        for name in suite.protocols:
            if name in protocol_owner:
                raise SuiteError(f"protocol {name!r} defined twice: {protocol_owner[name]} and {suite.folder}")
            protocol_owner[name] = suite.folder
    for suite in suites.values():
        if suite.default_protocol not in protocol_owner:
            raise SuiteError(f"suite {suite.name!r} ({suite.folder}): default protocol {suite.default_protocol!r} "
                             f"is no suite's protocol (known: {', '.join(protocol_owner)})")
    return Catalog(suites=suites, rules=rules, dirs=dirs)


def _load(folder: Path, module, *, builtin: bool) -> Suite:
    suite = getattr(module, "SUITE", None)
    if not isinstance(suite, Suite):
        raise SuiteError(f"{folder}: its __init__.py must declare SUITE = suites.spec.Suite(...)")
    suite = replace(suite, folder=folder, builtin=builtin)
    suite.check()
    return suite


def _import_outside(folder: Path):
    """A lab's suite folder imported as a package of its own (its modules may import each other
    relatively, and editfleet's `suites.shared` absolutely)."""
    name = "editfleet_suite_" + re.sub(r"\W", "_", f"{folder.parent.name}_{folder.name}")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error in a lab's suite becomes one line naming its folder
        del sys.modules[name]
        raise SuiteError(f"{folder}: cannot import the suite: {type(exc).__name__}: {exc}") from None
    return module
