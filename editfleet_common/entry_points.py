"""The services' console commands (pyproject.toml's [project.scripts]): `editfleet-editor` and
`editfleet-scorer` are `python -m editor_service` / `python -m scorer_service`, plus `--version`, and a
one-line error naming the extra to install where the service's dependencies are missing (one
distribution installs every command; `editfleet[orchestrator]` alone has no torch)."""

from __future__ import annotations

import importlib
import importlib.util
import sys

from .version import version

SERVICES = {
    # command: (module whose main() runs the service, the extra, what it needs to import)
    "editfleet-editor": ("editor_service.__main__", "editor", ("torch", "diffusers", "transformers")),
    "editfleet-scorer": ("scorer_service.__main__", "scorer", ("torch", "transformers", "yaml")),
}


def _run(command: str, argv: list[str] | None = None) -> int:
    module, extra, needs = SERVICES[command]
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--version"], ["-V"]):
        print(f"{command} {version()}")
        return 0
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if missing:
        print(f"{command}: this environment lacks {', '.join(missing)}: install the {extra} service's "
              f"dependencies, e.g. pip install 'editfleet[{extra}]'", file=sys.stderr)
        return 2
    return importlib.import_module(module).main(argv)


def editor() -> int:
    return _run("editfleet-editor")


def scorer() -> int:
    return _run("editfleet-scorer")
