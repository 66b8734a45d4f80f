"""Benchmark formats → one list of Samples, validated before any editor starts.

Adding a format: a module with `load(path, options) -> (samples, problems)` and
`looks_like(path, first_record) -> bool`, plus one entry in FORMATS. A format given as a folder (a
release folder, KRIS-Bench's) says `FOLDER = True` and has `digest(path) -> sha256 hex` over its files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from suites.gedit import data as gedit
from suites.imgedit import data as imgedit
from suites.kris import data as kris
from suites.native import data as native
from suites.reedit import data as reedit
from suites.rise import data as rise
from suites.seed import data as seed
from suites.shared.jsonl import first_record
from suites.shared.samples import BenchmarkError, Problem, Sample, safe_path_component, validate

# Detection tries them in this order; gedit before native since both are JSON Lines, re-edit (reads
# only the first item), imgedit and rise before seed since all are .json. A format whose module says
# FOLDER = True is given as a folder (kris: the release folder of <category>/annotation.json).
FORMATS = {"gedit": gedit, "native": native, "re-edit": reedit, "imgedit": imgedit, "rise": rise, "seed": seed, "kris": kris}


@dataclass
class Benchmark:
    path: Path
    format: str
    samples: list[Sample]
    sha256: str

    @property
    def categories(self) -> list[str]:
        """In order of first appearance."""
        return list(dict.fromkeys(s.category for s in self.samples))

    def describe(self) -> dict:
        return {
            "path": str(self.path),
            "format": self.format,
            "sha256": self.sha256,
            "samples": len(self.samples),
            "categories": {c: sum(s.category == c for s in self.samples) for c in self.categories},
        }


def headline(fmt: str | None) -> str:
    """The overall mean a suite's own report gives ("micro_mean" or "macro_mean"): its module's
    HEADLINE; formats without one (native) pool every sample, as the seed does."""
    return getattr(FORMATS.get(fmt or ""), "HEADLINE", "micro_mean")


def is_folder_format(fmt: str) -> bool:
    return bool(getattr(FORMATS.get(fmt), "FOLDER", False))


def detect_format(path: Path) -> str:
    first = first_record(path) if path.is_file() and path.suffix == ".jsonl" else None
    for name, module in FORMATS.items():
        if is_folder_format(name) != path.is_dir():
            continue
        if module.looks_like(path, first):
            return name
    raise BenchmarkError(
        f"{path}: cannot tell the benchmark format (native .jsonl with id/image, GEdit .jsonl with "
        f"key/task_type, ImgEdit .json of key -> id/prompt/edit_type, RE-Edit .json list with rationale_short_en, "
        f"RISEBench .json list of index/category/instruction/image, "
        f"seed .json list, a KRIS-Bench folder of <category>/annotation.json); set it with --benchmark-format "
        f"{{{','.join(FORMATS)}}}"
    )


def load_benchmark(
    path: str | Path,
    fmt: str = "auto",
    *,
    categories: list[str] | None = None,
    limit: int | None = None,
    options: dict | None = None,
) -> Benchmark:
    """Load, filter and validate. Raises BenchmarkError listing every offending sample."""
    path = Path(path)
    if not path.exists():
        raise BenchmarkError(f"benchmark file not found: {path}")
    if fmt == "auto":
        if not path.is_file() and not path.is_dir():
            raise BenchmarkError(f"benchmark must be a file or a release folder: {path}")
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise BenchmarkError(f"unknown benchmark format {fmt!r}; known: {', '.join(FORMATS)}")
    if is_folder_format(fmt) and not path.is_dir():
        raise BenchmarkError(f"the {fmt} benchmark is a folder (its release folder), got a file: {path}")
    if not is_folder_format(fmt) and not path.is_file():
        folder_formats = [name for name in FORMATS if is_folder_format(name)]
        raise BenchmarkError(f"benchmark must be a file (.jsonl or .json), got a folder: {path} "
                             f"(folders are for {', '.join(folder_formats)})")
    samples, problems = FORMATS[fmt].load(path, options or {})
    if categories:
        wanted = set(categories)
        unknown = wanted - {s.category for s in samples}
        if unknown and not problems:
            raise BenchmarkError(
                f"{path}: categories not in the benchmark: {', '.join(sorted(unknown))} "
                f"(it has: {', '.join(dict.fromkeys(s.category for s in samples))})"
            )
        samples = [s for s in samples if s.category in wanted]
    if limit is not None:
        samples = samples[:limit]
    validate(samples, pre_problems=problems)
    if not samples:
        raise BenchmarkError(f"{path}: no samples to run")
    module = FORMATS[fmt]
    digest = module.digest(path) if hasattr(module, "digest") else hashlib.sha256(path.read_bytes()).hexdigest()
    return Benchmark(path=path.resolve(), format=fmt, samples=samples, sha256=digest)


__all__ = [
    "Benchmark",
    "BenchmarkError",
    "FORMATS",
    "Problem",
    "Sample",
    "detect_format",
    "is_folder_format",
    "headline",
    "load_benchmark",
    "safe_path_component",
]
