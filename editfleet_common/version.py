"""The one version of editfleet (pyproject.toml's `version`), as the code that runs reports it:
`orchestrator --version`, every service's model identity (GetInfo, every result) and the run manifest.

In a checkout (an editable install, or the repository on the path) pyproject.toml itself is read, so a
version changed there is reported without reinstalling; installed from a wheel, the distribution's
metadata is."""

from __future__ import annotations

import importlib.metadata
from functools import lru_cache
from pathlib import Path

DISTRIBUTION = "editfleet"
_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@lru_cache(maxsize=1)
def version() -> str:
    try:
        import tomllib

        with open(_PYPROJECT, "rb") as f:
            project = tomllib.load(f).get("project", {})
        if project.get("name") == DISTRIBUTION and project.get("version"):
            return str(project["version"])
    except (OSError, ValueError):
        pass
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"  # neither a checkout nor installed (e.g. a copied tree on PYTHONPATH)


__version__ = version()
