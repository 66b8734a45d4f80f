"""A benchmark's data -> one list of Samples, validated before any editor starts. Which suite reads
it (its format) is the suite's own `data` module, found in the catalog of suites (suites.catalog):
given by name (--benchmark-format) or detected, trying each suite's `looks_like` in its
`detect_order`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from editfleet_common.images import DEFAULT_MAX_PIXELS
from suites.catalog import Catalog, catalog
from suites.shared.jsonl import first_record
from suites.shared.samples import BenchmarkError, Problem, Sample, safe_path_component, validate
from suites.spec import Suite, SuiteError


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


def suite_of(fmt: str | None, suites: Catalog | None = None) -> Suite | None:
    """The suite whose format `fmt` is; None for none known (a run folder of a suite not found now)."""
    return (suites or catalog()).suites.get(fmt or "")


def headline(fmt: str | None) -> str:
    """The overall mean a suite's own report gives ("micro_mean" or "macro_mean"); formats of no
    known suite pool every sample, as the seed does."""
    suite = suite_of(fmt)
    return suite.headline_mean if suite else "micro_mean"


def detect_suite(path: Path, suites: Catalog) -> Suite:
    first = first_record(path) if path.is_file() and path.suffix == ".jsonl" else None
    for suite in suites.suites.values():
        if not (suite.is_folder if path.is_dir() else suite.takes_file):
            continue
        if suite.data.looks_like(path, first):
            return suite
    raise BenchmarkError(
        f"{path}: cannot tell which suite's data this is; the suites read:\n"
        + "\n".join(f"  {s.name}: {s.reads}" for s in suites.suites.values())
        + f"\nset it with --benchmark-format {{{','.join(suites.suites)}}}"
    )


def load_benchmark(
    path: str | Path,
    fmt: str = "auto",
    *,
    categories: list[str] | None = None,
    limit: int | None = None,
    options: dict | None = None,
    suites: Catalog | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Benchmark:
    """Load, filter and validate (images within `max_pixels`: what the run's services take). Raises
    BenchmarkError listing every offending sample."""
    path = Path(path)
    suites = suites or catalog()
    if not path.exists():
        raise BenchmarkError(f"benchmark file not found: {path}")
    if fmt == "auto":
        if not path.is_file() and not path.is_dir():
            raise BenchmarkError(f"benchmark must be a file or a release folder: {path}")
        suite = detect_suite(path, suites)
    else:
        try:
            suite = suites.get(fmt)
        except SuiteError as exc:
            raise BenchmarkError(f"benchmark format: {exc}") from None
    if not suite.takes_file and not path.is_dir():
        raise BenchmarkError(f"the {suite.name} benchmark is a folder (its release folder), got a file: {path}")
    if not suite.is_folder and not path.is_file():
        folder_suites = [s.name for s in suites.suites.values() if s.is_folder]
        raise BenchmarkError(f"benchmark must be a file (.jsonl or .json), got a folder: {path} "
                             f"(folders are for {', '.join(folder_suites)})")
    samples, problems = suite.data.load(path, options or {})
    everything = samples
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
    kept = set(map(id, samples))  # a chain's turn whose input the filters leave out is named as such
    validate(samples, pre_problems=problems, left_out={s.id: s.where for s in everything if id(s) not in kept},
             max_pixels=max_pixels)
    if not samples:
        raise BenchmarkError(f"{path}: no samples to run")
    digest = suite.data.digest(path) if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return Benchmark(path=path.resolve(), format=suite.name, samples=samples, sha256=digest)


__all__ = [
    "Benchmark",
    "BenchmarkError",
    "Problem",
    "Sample",
    "detect_suite",
    "headline",
    "load_benchmark",
    "safe_path_component",
    "suite_of",
]
