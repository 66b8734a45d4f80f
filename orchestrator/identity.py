"""Do services run the same model the same way? Compared from their GetInfo before a run shares out
samples among editors, and again for every editor restarted during the run. And is it the model the
run config names (`model_mismatch`)? Runs are labelled by that name, so it is checked, never assumed."""

from __future__ import annotations

import json
from pathlib import Path


class DifferentModel(Exception):
    """Services that must be interchangeable are not: the message names the field and the values."""


# Runtime entries that describe an editor's software and hardware rather than how it was told to run:
# editors that differ only here run the same model the same way, but their edits may differ in the
# last bits (same seed, same sample). Every other runtime entry (speed mode, attention, compile,
# quantization) must be the same on every editor.
ENVIRONMENT_RUNTIME_KEYS = frozenset({"torch", "diffusers", "transformers", "accelerator"})
# How an editor started (a warm or cold compile cache): the same model run the same way either way.
STARTUP_RUNTIME_KEYS = frozenset({"compile_cache"})
IDENTITY_KEYS = ("content_hash", "model_class", "dtype", "load_format")


def same_identity_everywhere(infos: dict[str, dict], what: str) -> tuple[dict, dict[str, dict[str, str]]]:
    """The info all services share, and the environment entries in which they differ ({} when none).

    Raises DifferentModel naming the field when they do not run the same model the same way."""
    models = {name: info.get("model") or {} for name, info in infos.items()}
    for key in IDENTITY_KEYS:
        values = {name: model.get(key) for name, model in models.items()}
        if len(set(values.values())) > 1:
            raise DifferentModel(f"the {what}s do not run the same model: {key} differs: {values}")
    runtimes = {name: model.get("runtime") or {} for name, model in models.items()}
    keys = sorted({key for runtime in runtimes.values() for key in runtime} - STARTUP_RUNTIME_KEYS)
    differing = {key: {name: runtime.get(key, "") for name, runtime in runtimes.items()} for key in keys
                 if len({runtime.get(key) for runtime in runtimes.values()}) > 1}
    settings = {key: values for key, values in differing.items() if key not in ENVIRONMENT_RUNTIME_KEYS}
    if settings:
        raise DifferentModel(f"the {what}s do not run the model the same way: {settings}")
    return next(iter(infos.values())), differing


def environment_warning(differs: dict[str, dict[str, str]], subject_and_verb: str) -> str:
    """The warning for editors that differ only in software or hardware (`differs` as returned above),
    e.g. subject_and_verb="the editors differ"."""
    return (f"{subject_and_verb} in {', '.join(sorted(differs))}; the same seed and sample may give edits that "
            f"differ in the last bits: {differs}")


# -- the model a service runs against the one the run config names ----------------------------------
# The file a service of each kind reads first, and where it names the class the service reports.
_CLASS_FILES = {"editor": ("model_index.json", "_class_name"), "judge": ("config.json", "architectures")}


def hub_id_of(name: str) -> str | None:
    """The hub id a model name stands for: itself (org/name), or the repo of a folder inside a hub cache
    (.../models--org--name/snapshots/<commit>)."""
    from .preflight import looks_like_path

    if not looks_like_path(name):
        return name
    for part in reversed(Path(name).parts):
        if part.startswith("models--"):
            return part.removeprefix("models--").replace("--", "/")
    return None


def _same_name(named: str, reported: str) -> bool:
    if named == reported:
        return True
    a, b = Path(named).expanduser(), Path(reported).expanduser()
    if a.exists() and b.exists():
        try:
            return a.resolve() == b.resolve()
        except OSError:
            return False
    hub_a, hub_b = hub_id_of(named), hub_id_of(reported)
    return hub_a is not None and hub_a == hub_b


def _declared_class(folder: Path, what: str) -> str | None:
    filename, key = _CLASS_FILES[what]
    try:
        value = json.loads((folder / filename).read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def _local_hash(folder: Path, reported_hash: str) -> str | None:
    """The content hash a service would report for `folder` (as editfleet_common.model_files computes it,
    cached by size and mtime; weights in a hub cache are not re-read), in the form of `reported_hash`."""
    from editfleet_common.model_files import hash_files

    try:
        if reported_hash.startswith("dummy:"):
            return None  # random weights: the services hash their configs each their own way
        return hash_files(folder)
    except OSError:
        return None


def model_mismatch(named: str | None, reported: dict, what: str, where: str) -> str | None:
    """Why the model a service reports (its GetInfo identity) is not the one the run config names, naming
    both; None where it is (the same name or folder, the same hub repo, the same files by content hash,
    or, where the named model is not on this machine, the same final name), or where the config names none.
    what: "editor" or "judge"."""
    if not named:
        return None
    running = reported.get("model") or ""
    if _same_name(named, running):
        return None
    from .preflight import resolve_model

    folder = resolve_model(named)
    running_class, running_hash = reported.get("model_class") or "", reported.get("content_hash") or ""
    detail = ""
    if folder is not None:
        declared = _declared_class(folder, what)
        if declared and running_class and declared != running_class:
            detail = f"{declared} there, {running_class} in the {what}"
        elif running_hash and not running_hash.startswith(("dummy:", "api:")):
            local = _local_hash(folder, running_hash)
            if local == running_hash:
                return None
            if local:
                detail = f"content hash {local[:16]} there, {running_hash[:16]} in the {what}"
    if not detail:
        if folder is None and Path(named.rstrip("/")).name.lower() == Path(running.rstrip("/")).name.lower():
            return None  # not on this machine to compare: the same name is taken as the same model
        detail = f"{running_class or 'model'} {running_hash[:16]}".strip()
    flag = "--editor-model / editor.model" if what == "editor" else "--judge-model / judge.model"
    return (f"the {what} at {where} runs {running!r}, but the run config names {named!r} ({detail}): start the "
            f"{what} with that model, or name the one it runs ({flag}); runs are labelled by the model named")
