"""GEditBench v2 (ZhangqiJiang07/GEditBench_v2; the Hugging Face dataset GEditBench-v2/GEditBench-v2)
from its release folder, as the official code reads it:

    GEditBench-v2/data/*.parquet     one row per sample: key, instruction, source_image

`src/common_utils/dataset_loader.py` (GEditBench v2's `GEditBenchV2Eval.prepare_dataset`) and
`src/autogen/workflows/generation.py` (`prepare_geditv2_inputs`) open exactly that
(`load_dataset("parquet", data_files=f"{bench_path}/data/*.parquet")`) and read `key`, `instruction`
and `source_image` (a `datasets` Image: in the parquet file a struct of `bytes` and `path`). No
other column is read there, nor here.

The benchmark is the FOLDER (the one holding data/); its sha256 is taken over every data/*.parquet
(name and bytes, in name order). A sample's id is its `key`, `<task>_<six digits>` as the release
names them (background_change_000000): its category is the task, the part before the last `_`, as
GEditBench v2's results are split by task (orchestrator/arena/matches.py, `category_of_prompt`). A
key of another form, or one holding "_pair_" (its match keys are split there), is a load problem
naming the row. The source images stay in the parquet files: each sample carries its image's bytes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from suites.shared.samples import Problem, Sample

FOLDER = True  # the benchmark is a folder, not a file
COLUMNS = ("key", "instruction", "source_image")
_KEY = re.compile(r"^(.+)_(\d+)$")


def parquet_files(path: Path) -> list[Path]:
    data = Path(path) / "data"
    return sorted(p for p in data.glob("*.parquet") if p.is_file()) if data.is_dir() else []


def digest(path: Path) -> str:
    """sha256 over every data/*.parquet: name and bytes, in name order."""
    h = hashlib.sha256()
    for file in parquet_files(path):
        h.update(f"data/{file.name}\0".encode())
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def _columns(file: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(file).names)


def looks_like(path: Path, first: dict | None) -> bool:
    files = parquet_files(path) if Path(path).is_dir() else []
    if not files:
        return False
    try:
        return set(COLUMNS) <= set(_columns(files[0]))
    except Exception:  # noqa: BLE001 - not a parquet file we can read: not this suite's folder
        return False


def category_of_key(key: str) -> str | None:
    """`background_change_000000` -> `background_change`."""
    m = _KEY.match(key)
    return m.group(1) if m else None


def _image_bytes(value) -> bytes | None:
    """A `datasets` Image cell ({"bytes": ..., "path": ...}) or plain bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value) or None
    if isinstance(value, dict) and isinstance(value.get("bytes"), (bytes, bytearray)):
        return bytes(value["bytes"]) or None
    return None


def load(path: Path, options: dict) -> tuple[list[Sample], list[Problem]]:
    import pyarrow.parquet as pq

    path = Path(path)
    files = parquet_files(path)
    if not files:
        return [], [Problem(str(path), None, "no data/*.parquet in the release folder")]
    samples, problems = [], []
    order = 0
    for file in files:
        where_file = f"data/{file.name}"
        try:
            names = _columns(file)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is this benchmark's problem
            problems.append(Problem(where_file, None, f"not a readable parquet file ({exc})", order))
            continue
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            problems.append(Problem(where_file, None, f"missing column(s): {', '.join(missing)}", order))
            continue
        parquet = pq.ParquetFile(file)
        row = 0
        for batch in parquet.iter_batches(columns=list(COLUMNS), batch_size=64):
            for record in batch.to_pylist():
                order += 1
                where = f"{where_file}[{row}]"
                row += 1
                key = record.get("key")
                if not isinstance(key, str) or not key:
                    problems.append(Problem(where, None, "key: missing or not a string", order))
                    continue
                issues = []
                category = category_of_key(key)
                if category is None:
                    issues.append(f"key {key!r} is not <task>_<number> (the task is its category)")
                if "_pair_" in key:
                    issues.append(f"key {key!r} holds '_pair_', where GEditBench v2's match keys are split")
                instruction = record.get("instruction")
                if not isinstance(instruction, str):
                    issues.append("instruction: missing or not a string")
                image = _image_bytes(record.get("source_image"))
                if image is None:
                    issues.append("source_image: no image bytes")
                if issues:
                    problems.extend(Problem(where, key, issue, order) for issue in issues)
                    if category is None or not isinstance(instruction, str):
                        continue
                samples.append(Sample(id=key, category=category, instruction=instruction, image_bytes=image,
                                      where=where, order=order, extras={"key": key}))
    return samples, problems
