"""Suites' own on-disk output layouts: `orchestrator export` writes a run's edits where a suite's
official scorer reads them, `orchestrator import` turns edits made elsewhere, sitting in that layout,
into a run folder that `score` and `report` judge like our own.

A layout is the `layout` module of a suite (suites/<name>/layout.py; its shape: suites/spec.py); the
layout's name is the suite's. Missing edits are listed, never filled with the source image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from editfleet_common.errors import InvalidInput
from editfleet_common.images import decode_image

from .results import sha256_hex, write_atomic, write_json_atomic
from suites.catalog import catalog
from suites.shared.layout import LayoutError, as_png
from suites.spec import Suite

EXPORT_RECORD = "editfleet_export.json"  # what an export wrote (and that the folder is one of ours)


def names() -> list[str]:
    """The suites with a layout."""
    return [s.name for s in catalog().suites.values() if s.layout is not None]


def get(name: str) -> Suite:
    """The suite whose layout `name` is."""
    suite = catalog().suites.get(name)
    if suite is None or suite.layout is None:
        raise LayoutError(f"unknown layout {name!r}; known: {', '.join(names())}")
    return suite


@dataclass
class Exported:
    root: Path
    written: int = 0
    extra: int = 0
    missing: list[str] = field(default_factory=list)   # "<sample id>: why"


def export_edits(suite: Suite, samples, edits: dict, edits_root: Path, folder: Path, method: str) -> Exported:
    """Write every finished edit (and the layout's extra files) under the layout's root."""
    layout = suite.layout
    root = layout.root(folder, method)
    marker = root / EXPORT_RECORD
    if root.is_dir() and any(root.iterdir()) and not marker.is_file():
        raise LayoutError(f"{root} is not empty and not an earlier export (no {EXPORT_RECORD}): "
                          "export to another --to or --method")
    result = Exported(root=root)
    for sample in samples:
        for relpath, data in layout.extra_files(sample).items():
            write_atomic(root / relpath, data)
            result.extra += 1
        edit = edits.get(sample.id)
        if edit is None or edit.get("status") != "ok":
            why = f"edit failed ({edit.get('error', '')})" if edit is not None else "not edited"
            result.missing.append(f"{sample.id}: {why}")
            # an earlier export's file for it would be judged by the official scorer: not any more
            (root / layout.edit_relpath(sample)).unlink(missing_ok=True)
            continue
        data = (edits_root / edit["path"]).read_bytes()
        encode = getattr(layout, "encode", as_png)
        write_atomic(root / layout.edit_relpath(sample), encode(data, field=edit["path"]))
        result.written += 1
    write_json_atomic(marker, {
        "layout": suite.name, "method": method, "edits": result.written, "missing": result.missing})
    return result


@dataclass
class Imported:
    root: Path
    imported: int = 0
    unchanged: int = 0
    missing: list[str] = field(default_factory=list)      # relative paths not there
    unreadable: list[str] = field(default_factory=list)   # "relpath: why"


def import_edits(suite: Suite, samples, run_dir, folder: Path, method: str | None) -> Imported:
    """Each sample's edit from the layout into run_dir (edits/ + edits.jsonl), its provenance recorded:
    imported, the file's path and sha256. A missing or unreadable file is listed and recorded as that
    sample's failed edit (final: a later import with the file there replaces it)."""
    layout = suite.layout
    root = layout.root(folder, method)
    if not root.is_dir():
        raise LayoutError(f"{root}: no such folder (the {suite.name} layout: {layout.DESCRIPTION})")
    result = Imported(root=root)
    done, _ = run_dir.edit_state(samples)
    for sample in samples:
        relpath = layout.import_relpath(root, sample) if hasattr(layout, "import_relpath") else layout.edit_relpath(sample)
        path = root / relpath
        provenance = {"imported": True, "layout": suite.name, "from": str(path)}
        if not path.is_file():
            result.missing.append(relpath)
            run_dir.record_edit_failure(sample, f"not in the imported folder: {path}", final=True,
                                        provenance=provenance)
            continue
        try:
            data = path.read_bytes()
            png = as_png(data, field=relpath)
        except (OSError, InvalidInput) as exc:
            result.unreadable.append(f"{relpath}: {exc}")
            run_dir.record_edit_failure(sample, f"unreadable in the imported folder: {path}: {exc}", final=True,
                                        provenance=provenance)
            continue
        provenance["sha256"] = sha256_hex(data)
        if sample.id in done and done[sample.id].get("provenance", {}).get("sha256") == provenance["sha256"]:
            result.unchanged += 1
            continue
        width, height = decode_image(png).size
        run_dir.save_edit(sample, png, {"instruction": sample.instruction, "width": width, "height": height,
                                        "provenance": provenance})
        result.imported += 1
    return result


__all__ = ["LayoutError", "get", "names", "export_edits", "import_edits", "Exported", "Imported"]
