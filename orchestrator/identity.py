"""Do services run the same model the same way? Compared from their GetInfo before a run shares out
samples among editors, and again for every editor restarted during the run."""

from __future__ import annotations


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
