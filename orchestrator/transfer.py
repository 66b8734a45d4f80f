"""`orchestrator export` and `orchestrator import`: a run folder to and from a suite's own layout
(suites/<name>/layout.py). Export reads a run's current edits; import writes a run folder whose edits
are the imported files (provenance: imported, path, sha256), then its summary and report, so that
`orchestrator score` judges them like edits of our own."""

from __future__ import annotations

from pathlib import Path

from . import layouts
from . import manifest as mf
from .config import build_config
from .results import RunDir
from .run import RunError, config_from_run_dir, current_results, finish, load_samples, open_run_dir

SHOWN = 20  # missing files listed on the console (all of them are in the manifest / export file)


def _listed(title: str, items: list[str]) -> str:
    more = f"\n    ... and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return f"  {title} ({len(items)}):\n" + "\n".join(f"    {i}" for i in items[:SHOWN]) + more


def export_run(path: Path, layout_name: str, to: Path, method: str | None, ui) -> layouts.Exported:
    suite = layouts.get(layout_name)
    config, manifest = config_from_run_dir(path)
    if manifest.get("rejudge_of"):
        path = Path(manifest["rejudge_of"])  # a re-judge folder holds no edits: the run's are exported
        config, manifest = config_from_run_dir(path)
    fmt = (manifest.get("benchmark") or {}).get("format")
    if fmt != suite.name:
        raise layouts.LayoutError(f"{path}: its benchmark is in the {fmt!r} format; the {suite.name} layout "
                                  f"needs a {suite.name!r} benchmark")
    samples = load_samples(config).samples
    run_dir = RunDir(path)
    edits, _ = current_results(run_dir, samples)
    result = layouts.export_edits(suite, samples, edits, run_dir.edits_root, to, method or path.resolve().name)
    ui.print(f"Exported {result.written} edit(s) of {len(samples)} sample(s) in the {suite.name} layout to "
             f"{result.root} ({result.extra} source file(s))")
    if result.missing:
        ui.print(_listed("missing edits, not written (never replaced by the source image)", result.missing))
    return result


def import_run(folder: Path, layout_name: str, benchmark: str, options: dict, method: str | None,
               output: Path, ui) -> layouts.Imported:
    """options: benchmark.* settings given (language, image_root); None values are left out."""
    suite = layouts.get(layout_name)
    root = suite.layout.root(folder, method)
    data = {
        "benchmark": {"path": benchmark, "format": suite.name,
                      **{k: v for k, v in options.items() if v is not None}},
        "editor": {"model": f"imported:{suite.name}:{root.resolve().name}"},
        "output": str(output),
        "_origin": "command line",
    }
    prior = RunDir(output).read_manifest()
    if prior is not None and not (prior.get("editor") or {}).get("imported"):
        raise RunError(f"{output} holds a run of our own editors; import into another --output")
    config = build_config(data).absolutize()
    bench = load_samples(config)
    run_dir, manifest = open_run_dir(config, bench, judging=False)
    session = manifest["sessions"][-1]
    status = "failed"
    try:
        result = layouts.import_edits(suite, bench.samples, run_dir, folder, method)
        manifest["editor"] = {"imported": {"layout": suite.name, "folder": str(result.root.resolve()),
                                           "imported_at": mf.now()}}
        session.update(imported=result.imported, unchanged=result.unchanged, missing=result.missing,
                       unreadable=result.unreadable)
        ui.print(f"Imported {result.imported} edit(s) from {result.root} into {run_dir.path}"
                 + (f" ({result.unchanged} already there)" if result.unchanged else ""))
        if result.missing:
            ui.print(_listed("missing (recorded as failed edits)", result.missing))
        if result.unreadable:
            ui.print(_listed("unreadable (recorded as failed edits)", result.unreadable))
        finish(config, run_dir, manifest, bench.samples, ui, title="Summary (imported edits, not judged yet)")
        ui.print(f"Judge them with: python -m orchestrator score {run_dir.path} --judge-model ... "
                 f"(protocol: {config.judge.protocol}, the suite's own)")
        status = "complete"
        return result
    finally:
        session.update(finished=mf.now(), status=status)
        run_dir.write_manifest(manifest)
