"""The arena's players: run folders of one benchmark, each a model's edits of the same samples.

A run (an output folder of `orchestrator run`, or of `orchestrator import`; a re-judge folder stands
for the run it re-judges) is a player; its name is `--label`, else the folder an imported run came
from (a candidates gallery's model folder: BAGEL), else the run folder's name. Players must be of the
same benchmark: the same suite, the same file (sha256) and the same samples (the same selection:
categories, limit, language...); otherwise the arena is refused, naming what differs. A sample a
player has no finished edit of (a failed or missing edit) is left out of that player's pairs, as
GEditBench v2 pairs only the candidates a model has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..benchmark import BenchmarkError, Sample
from ..results import ResultsError, RunDir
from .matches import make_key


class ArenaError(Exception):
    """An arena that cannot be run as asked (named runs, files and what is wrong)."""


@dataclass
class Player:
    name: str
    path: Path                       # the run folder given
    manifest: dict
    edits_root: Path                 # where its edits are (a re-judge folder: the run's)
    edits: dict[str, dict] = field(default_factory=dict)  # sample id -> its finished edit's line

    def edit_path(self, sample: Sample) -> Path:
        return self.edits_root / self.edits[sample.id]["path"]

    def describe(self) -> dict:
        editor = self.manifest.get("editor") or {}
        model = (editor.get("model") or {}) if isinstance(editor.get("model"), dict) else {}
        return {"name": self.name, "run": str(self.path.resolve()), "edits": len(self.edits),
                "editor_model": model.get("model") or (self.manifest.get("config") or {}).get("editor", {}).get("model"),
                "editor_hash": model.get("content_hash"),
                "imported": (editor.get("imported") or {}).get("folder")}


def default_name(path: Path, manifest: dict) -> str:
    imported = ((manifest.get("editor") or {}).get("imported") or {}).get("folder")
    return Path(imported).name if imported else Path(path).resolve().name


def _selection(config) -> dict:
    b = config.benchmark
    return {"categories": sorted(b.categories) if b.categories else None, "limit": b.limit,
            "language": b.language, "image_root": b.image_root}


def load_players(run_dirs: list[Path], labels: list[str] | None = None, *, load_samples) -> tuple[list[Player], list[Sample], dict]:
    """(players, the samples, the benchmark's description). load_samples(config) -> Benchmark."""
    from ..run import RunError, config_from_run_dir

    labels = list(labels or [])
    if labels and len(labels) != len(run_dirs):
        raise ArenaError(f"{len(labels)} --label(s) for {len(run_dirs)} run(s): give one per run, in order")
    loaded = []
    for i, path in enumerate(run_dirs):
        path = Path(path)
        try:
            config, manifest = config_from_run_dir(path)
        except (RunError, ResultsError) as exc:
            raise ArenaError(str(exc)) from None
        edits_root = Path(manifest["rejudge_of"]) if manifest.get("rejudge_of") else path
        if manifest.get("rejudge_of"):
            config, manifest = config_from_run_dir(edits_root)
        name = labels[i] if labels else default_name(edits_root, manifest)
        loaded.append((path, config, manifest, edits_root, name))

    names = [name for *_, name in loaded]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ArenaError(f"players named twice: {', '.join(twice)} (give each run its own --label)")
    for name in names:
        try:
            make_key("p", name, "q")
            make_key("p", "q", name)
        except ValueError:
            raise ArenaError(f"player name {name!r} cannot be split from a match key '<prompt>_pair_<A>_vs_<B>' "
                             "(it holds '_vs_' or '_pair_'): give it another --label") from None
        if not name or "/" in name or name != name.strip():
            raise ArenaError(f"player name {name!r}: a non-empty name without '/' or surrounding spaces (--label)")

    first_path, first_config, first_manifest, *_ = loaded[0]
    first_bench = first_manifest.get("benchmark") or {}
    for path, config, manifest, _, name in loaded[1:]:
        bench = manifest.get("benchmark") or {}
        if bench.get("format") != first_bench.get("format"):
            raise ArenaError(f"runs of different benchmarks: {first_path} is {first_bench.get('format')!r}, "
                             f"{path} is {bench.get('format')!r}")
        if bench.get("sha256") != first_bench.get("sha256"):
            raise ArenaError(f"runs of different benchmark files: {first_path} ran {first_bench.get('path')} "
                             f"(sha256 {str(first_bench.get('sha256'))[:12]}), {path} ran {bench.get('path')} "
                             f"(sha256 {str(bench.get('sha256'))[:12]})")

    # the samples of each distinct selection, loaded once each; every run must have the same ids
    by_selection: dict[str, tuple[list[Sample], Path]] = {}
    ids: dict[Path, list[str]] = {}
    for path, config, manifest, _, name in loaded:
        key = repr(sorted(_selection(config).items()))
        if key not in by_selection:
            try:
                by_selection[key] = (load_samples(config).samples, path)
            except (BenchmarkError, RunError) as exc:
                raise ArenaError(f"{path}: its benchmark cannot be read: {str(exc).splitlines()[0]}") from None
        ids[path] = [s.id for s in by_selection[key][0]]
    first_ids = ids[first_path]
    selections = {path: _selection(config) for path, config, *_ in loaded}
    for path, *_ in loaded[1:]:
        if set(ids[path]) != set(first_ids):
            lacks = [i for i in first_ids if i not in set(ids[path])]
            more = [i for i in ids[path] if i not in set(first_ids)]
            parts = []
            if lacks:
                parts.append(f"lacks {len(lacks)} of its samples ({', '.join(lacks[:5])}{' ...' if len(lacks) > 5 else ''})")
            if more:
                parts.append(f"has {len(more)} others ({', '.join(more[:5])}{' ...' if len(more) > 5 else ''})")
            raise ArenaError(f"runs of different samples: against {first_path}, {path} {' and '.join(parts)} "
                             f"(selections: {selections[first_path]} vs {selections[path]})")
    samples = next(iter(by_selection.values()))[0]

    players = []
    for path, config, manifest, edits_root, name in loaded:
        done, _ = RunDir(edits_root).edit_state(samples)
        players.append(Player(name, path, manifest, edits_root, done))
    return players, samples, first_bench
