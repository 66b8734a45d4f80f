"""Suites' own on-disk output layouts: `orchestrator export` writes a run's edits where a suite's
official scorer reads them, `orchestrator import` turns edits made elsewhere, sitting in that layout,
into a run folder that `score` and `report` judge like our own.

A layout is the `layout` module of a suite (suites/<name>/layout.py; its shape: suites/spec.py); the
layout's name is the suite's. Missing edits are listed, never filled with the source image.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from editfleet_common import safe_files
from editfleet_common.errors import InvalidInput
from editfleet_common.images import MAX_IMAGE_FILE_BYTES, decode_image

from .results import sha256_hex
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
    files: list[dict] = field(default_factory=list)    # each edit written: {id, path, from, sha256} (what was read)


def _links_in(folder: Path, relpaths) -> list[str]:
    """'path -> target' for each symbolic link on the way to any of relpaths under folder (each once)."""
    found: dict[Path, str] = {}
    for rel in relpaths:
        link = safe_files.first_link(folder, rel)
        if link is not None and link not in found:
            found[link] = f"{link} -> {os.readlink(link)}"
    return list(found.values())


def export_edits(suite: Suite, samples, edits: dict, edits_root: Path, folder: Path, method: str) -> Exported:
    """Write every finished edit (and the layout's extra files) under the layout's root.

    Nothing is written, deleted or read through a symbolic link below `folder` (the --to folder, as
    the user named it): a link anywhere on the way to a file of the layout (the method's folder, a
    subfolder, the file itself) refuses the export before anything is written; every write and delete
    then goes through safe_files, which does not follow one either, should one appear meanwhile. The
    run's edit files are read only inside the run folder, regular files up to the image limit."""
    layout = suite.layout
    root = layout.root(folder, method)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = root.relative_to(folder)
    encode = getattr(layout, "encode", as_png)
    # (a layout's extra files sit beside the edits; one that is itself a link is refused when written)
    links = _links_in(folder, [base / rel for rel in (EXPORT_RECORD, *map(layout.edit_relpath, samples))])
    if links:
        shown = "; ".join(links[:3]) + (f"; and {len(links) - 3} more" if len(links) > 3 else "")
        raise LayoutError(f"an export never writes, deletes or reads through a symbolic link: {shown}. "
                          "Nothing was written: remove the link(s) or export to another --to or --method")
    if root.is_dir() and any(root.iterdir()) and not (root / EXPORT_RECORD).is_file():
        raise LayoutError(f"{root} is not empty and not an earlier export (no {EXPORT_RECORD}): "
                          "export to another --to or --method")
    result = Exported(root=root)
    try:
        for sample in samples:
            for relpath, data in layout.extra_files(sample).items():
                safe_files.write_beneath(folder, base / relpath, data)
                result.extra += 1
            edit = edits.get(sample.id)
            relpath = layout.edit_relpath(sample)
            if edit is None or edit.get("status") != "ok":
                why = f"edit failed ({edit.get('error', '')})" if edit is not None else "not edited"
                result.missing.append(f"{sample.id}: {why}")
                # an earlier export's file for it would be judged by the official scorer: not any more
                safe_files.unlink_beneath(folder, base / relpath)
                continue
            try:
                data = safe_files.read_beneath(edits_root, edit["path"], MAX_IMAGE_FILE_BYTES)
            except OSError as exc:  # a link out of the run, a path leaving it, too large, gone
                result.missing.append(f"{sample.id}: its edit file {edit['path']!r} not read ({exc})")
                safe_files.unlink_beneath(folder, base / relpath)
                continue
            safe_files.write_beneath(folder, base / relpath, encode(data, field=edit["path"]))
            result.files.append({"id": sample.id, "path": relpath, "from": edit["path"], "sha256": sha256_hex(data)})
            result.written += 1
    except safe_files.UnsafePath as exc:  # a link that appeared while the export went on
        raise LayoutError(f"an export never writes, deletes or reads through a symbolic link: {exc}") from None
    safe_files.write_beneath(folder, base / EXPORT_RECORD, json.dumps({
        "layout": suite.name, "method": method, "edits": result.written, "missing": result.missing,
        "files": result.files}, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
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
    imported, the file it read (`from`; `link`: the layout's path where that was a link to it) and its
    sha256. A missing or unreadable file is listed and recorded as that sample's failed edit (final: a
    later import with the file there replaces it).

    Nothing outside `folder` (as the user named it) is read: the layout's root and each file are
    resolved and must stay inside it (a link within it is followed, one out of it is not), and only
    regular files up to the image limit are read, refused from their size before a byte is."""
    layout = suite.layout
    root = layout.root(folder, method)
    if not root.is_dir():
        raise LayoutError(f"{root}: no such folder (the {suite.name} layout: {layout.DESCRIPTION})")
    try:
        safe_files.real_inside(folder, root)
    except safe_files.OutsideRoot as exc:
        raise LayoutError(f"an import reads nothing outside its folder: {exc}") from None
    result = Imported(root=root)
    done, _ = run_dir.edit_state(samples)
    for sample in samples:
        relpath = layout.import_relpath(root, sample) if hasattr(layout, "import_relpath") else layout.edit_relpath(sample)
        path = root / relpath
        provenance = {"imported": True, "layout": suite.name, "from": str(path)}
        if not os.path.lexists(path):
            result.missing.append(relpath)
            run_dir.record_edit_failure(sample, f"not in the imported folder: {path}", final=True,
                                        provenance=provenance)
            continue
        try:
            real = safe_files.real_inside(folder, path)
            data = safe_files.read_beneath(Path(folder).resolve(), real, MAX_IMAGE_FILE_BYTES)
            read = Path(folder) / real  # the file read, named under the folder as given
            if read != path:
                provenance.update({"from": str(read), "link": str(path)})
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
