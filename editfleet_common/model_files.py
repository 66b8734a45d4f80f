"""Content hashes of model directories: which exact files a service runs, without re-reading
tens of GB of weights at every start (cached by size and mtime; hub blobs are named by sha256)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

CONFIG_SUFFIXES = (".json", ".txt", ".model", ".jinja")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def model_snapshot(model: str, revision: str | None = None, *, local_only: bool = False) -> tuple[Path, str]:
    """(local directory, hub commit or '') of a model given as a directory or a hub id (downloaded
    unless local_only; a directory inside a hub cache's snapshots/ gives that snapshot's commit)."""
    path = Path(model)
    if path.is_dir():
        parts = path.resolve().parts
        commit = parts[-1] if len(parts) > 1 and parts[-2] == "snapshots" else ""
        return path, commit
    from huggingface_hub import snapshot_download

    local = Path(snapshot_download(model, revision=revision, local_files_only=local_only))
    return local, local.name  # hub cache layout: .../snapshots/<commit>


def model_files(root: Path, config_only: bool) -> list[Path]:
    suffixes = CONFIG_SUFFIXES if config_only else CONFIG_SUFFIXES + WEIGHT_SUFFIXES
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.name.endswith(suffixes):
            files.append(path)
    return files


def hash_files(root: Path, *, config_only: bool = False) -> str:
    """sha256 over the config (and weight) files of a model directory, cached by size and mtime."""
    root = Path(root).resolve()
    files = model_files(root, config_only)
    fingerprint = hashlib.sha256(
        json.dumps(
            [str(root), config_only]
            + [(str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
        ).encode()
    ).hexdigest()
    cache_file = cache_dir() / "content-hash" / f"{fingerprint}.txt"
    if cache_file.is_file():
        return cache_file.read_text().strip()
    total = hashlib.sha256()
    for f in files:
        total.update(f"{f.relative_to(root).as_posix()}\t{_file_sha256(f)}\n".encode())
    value = total.hexdigest()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(value)
        tmp.replace(cache_file)
    except OSError as exc:  # a read-only home only costs a re-hash next time
        log.warning("could not cache the content hash: %s", exc)
    return value


def _file_sha256(path: Path) -> str:
    # In the HF hub cache, large files are symlinks to blobs named by their sha256: no need to
    # read 50 GB of weights to know it (the same digest a local copy of the files would give).
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        if target.parent.name == "blobs" and len(target.name) == 64 and all(c in "0123456789abcdef" for c in target.name):
            return target.name
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("EDITFLEET_CACHE_DIR") or Path.home() / ".cache" / "editfleet")


