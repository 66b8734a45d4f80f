"""A suite distributed as a Hugging Face dataset, read from the downloaded dataset folder itself (no
export step, no `datasets` library): its Parquet files, or the Arrow files `datasets` writes, with the
images embedded as the `datasets` Image feature stores them ({"bytes": ..., "path": ...}).

Example (a suite's data.py):

    from suites.shared import hf_dataset as hf

    files = hf.data_files(folder, split="test")      # HFDatasetError: no data file, a bad README config
    for row in hf.iter_rows(files, columns=("idx", "instruction", "image"), optional=("task",)):
        if row.record is None:                        # the file or a part of it could not be read
            problems.append(Problem(row.where, None, row.error, row.order)); continue
        if row.error:                                 # a cell over a bound, an image not embedded, ...
            problems.append(Problem(row.where, str(row.record["idx"]), row.error, row.order))
        row.record["image"]                           # bytes (an Image column; a list of bytes for a list of images)

Which files, and their config and split, as `datasets` finds them (datasets/data_files.py), in order:

1. README.md's YAML front matter `configs:` (each `config_name` with `data_files`: a pattern, a list
   of them, or a list of {split, path}); patterns are globs relative to the folder (`*` within one
   folder level, `**` across).
2. A `save_to_disk` folder: dataset_dict.json's `splits`, each `<split>/state.json`'s `_data_files`
   (a single Dataset: state.json at the top, split `_split` or train).
3. Every *.parquet / *.arrow below the folder (hidden folders such as .cache/ and .git/ left out):
   `data/<split>-NNNNN-of-NNNNN.*` or `data/<split>/...` name the split; else a path part
   train/training, validation/valid/dev/val, test/testing/eval/evaluation, set off by - . _ space,
   a digit or a folder boundary (files naming none are then left out; where no file names one, all
   are train); `<config>/<split>/<file>` (the hub's refs/convert/parquet branch) names the config.

Bounds, as the other loaders have them (suites/shared/samples.py check_image,
editfleet_common/safe_files.py): data files are regular files inside the folder once links are
resolved (the one exception: a Hugging Face cache snapshot, `.../snapshots/<revision>/`, whose files
are links into the repository's `blobs/`, may lead there); a Parquet footer over MAX_FOOTER_BYTES and a
row group whose columns read are over max_row_group_bytes uncompressed are refused before they are
read; Arrow files are memory-mapped, never read whole; a cell is measured before it is copied out
(over MAX_CELL_BYTES: refused), an image over MAX_IMAGE_FILE_BYTES and a string over MAX_TEXT_BYTES
are refused. Every refusal names the file and the row (or the row group and its rows).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from editfleet_common.images import MAX_IMAGE_FILE_BYTES

EXTENSIONS = {".parquet": "parquet", ".arrow": "arrow"}
SPLIT_KEYWORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"),
                  "test": ("test", "testing", "eval", "evaluation")}
MAX_FOOTER_BYTES = 64 << 20          # a Parquet file's metadata (its footer)
MAX_ROW_GROUP_BYTES = 2 << 30        # a row group's columns read, uncompressed
MAX_CELL_BYTES = 256 << 20           # one cell before it is copied out (a list of images included)
MAX_TEXT_BYTES = 1 << 20             # one string
MAX_README_BYTES = 1 << 20           # README.md's front matter is looked for in its first MiB
BATCH_ROWS = 16                      # rows decoded at once

_SEP = r"[-._ 0-9]"
_SHARD = re.compile(r"^data/([^/]+?)-\d{5}-of-\d{5}[^/]*$")
_IN_DATA_DIR = re.compile(r"^data/([^/]+)/.+$")


class HFDatasetError(Exception):
    """A dataset folder that cannot be read: the message names the folder or file and what is wrong."""


@dataclass(frozen=True)
class DataFile:
    root: Path          # the dataset folder
    relpath: str        # relative to it (posix), as messages name it
    config: str
    split: str

    @property
    def path(self) -> Path:
        return self.root / self.relpath

    @property
    def format(self) -> str:
        return EXTENSIONS[Path(self.relpath).suffix]


@dataclass(frozen=True)
class Row:
    file: DataFile
    index: int | None          # the row in its file; None where the whole file is meant
    order: int                 # 1-based over everything iter_rows yielded: problems listed in read order
    record: dict | None        # None: nothing of the file (or of the rows named) could be read
    error: str | None = None   # what is wrong (with record: the cells left None, each named)

    @property
    def where(self) -> str:
        return self.file.relpath if self.index is None else f"{self.file.relpath}[{self.index}]"


# ---------------------------------------------------------------- which files


def data_files(folder: str | os.PathLike, *, config: str | None = None, split: str | None = None) -> list[DataFile]:
    """The dataset's data files (of one config and split where named), in (config, split, name) order.
    HFDatasetError where there are none (naming the configs and splits there are), or where the
    README's configs or a save_to_disk folder's files cannot be used."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HFDatasetError(f"{folder}: not a folder (a downloaded Hugging Face dataset folder)")
    found = _find(folder)
    if not found:
        raise HFDatasetError(f"{folder}: no data file (*.parquet, *.arrow) in it, nor a README.md configs: "
                             "entry naming one")
    chosen = [f for f in found if (config is None or f.config == config) and (split is None or f.split == split)]
    if not chosen:
        there = ", ".join(f"{c}/{s}" for c, s in dict.fromkeys((f.config, f.split) for f in found))
        raise HFDatasetError(f"{folder}: no data file of {'config ' + repr(config) if config else ''}"
                             f"{' and ' if config and split else ''}{'split ' + repr(split) if split else ''} "
                             f"(config/split there: {there})")
    return chosen


def splits(folder: str | os.PathLike) -> dict[str, list[str]]:
    """config -> its splits, in order."""
    out: dict[str, list[str]] = {}
    for f in data_files(folder):
        if f.split not in out.setdefault(f.config, []):
            out[f.config].append(f.split)
    return out


def _find(folder: Path) -> list[DataFile]:
    configs = _readme_configs(folder)
    if configs is not None:
        return configs
    if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        return _saved(folder)
    relpaths = sorted(rel for rel in _walk(folder) if Path(rel).suffix in EXTENSIONS)
    return _order([DataFile(folder, rel, cfg, spl) for rel, cfg, spl in _infer(relpaths)])


def _order(files: list[DataFile]) -> list[DataFile]:
    rank = {name: i for i, name in enumerate(SPLIT_KEYWORDS)}
    configs = list(dict.fromkeys(f.config for f in files))
    return sorted(files, key=lambda f: (configs.index(f.config), rank.get(f.split, len(rank)), f.split, f.relpath))


def _walk(folder: Path) -> Iterator[str]:
    """Relative paths of the files below folder, hidden folders and files left out (links to files
    listed, checked when opened; links to folders not followed)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith("."):
                yield PurePosixPath(Path(dirpath).relative_to(folder), name).as_posix()


def _infer(relpaths: list[str]) -> list[tuple[str, str, str]]:
    """(relpath, config, split) as `datasets` infers them without a README config."""
    shards = [_SHARD.match(r) for r in relpaths]
    if relpaths and all(shards):
        return [(r, "default", m.group(1)) for r, m in zip(relpaths, shards)]
    in_dir = [_IN_DATA_DIR.match(r) for r in relpaths]
    if relpaths and all(in_dir):
        return [(r, "default", m.group(1)) for r, m in zip(relpaths, in_dir)]
    named = [(r, _split_of(r)) for r in relpaths]
    if not any(s for _, s in named):
        return [(r, "default", "train") for r in relpaths]
    out = []
    for rel, spl in named:
        if spl is None:
            continue
        parts = rel.split("/")
        config = parts[0] if len(parts) == 3 and parts[0] != "data" and parts[1] in SPLIT_KEYWORDS[spl] else "default"
        out.append((rel, config, spl))
    return out


def _split_of(relpath: str) -> str | None:
    for name, words in SPLIT_KEYWORDS.items():
        for word in words:
            if re.search(rf"(?:^|{_SEP}|/){re.escape(word)}(?:{_SEP}|/)", relpath):
                return name
    return None


def _readme_configs(folder: Path) -> list[DataFile] | None:
    """The files README.md's `configs:` names; None where it names none (no README, no front matter,
    no configs key)."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    with open(readme, "rb") as f:
        head = f.read(MAX_README_BYTES).decode("utf-8", errors="replace")
    lines = head.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
    except StopIteration:
        return None
    from editfleet_common.safe_yaml import safe_load

    try:
        meta = safe_load("\n".join(lines[1:end]))
    except Exception as exc:  # noqa: BLE001 - YAML syntax or a bound: the file is named, the reason given
        raise HFDatasetError(f"{readme}: its YAML front matter cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("configs") is None:
        return None
    configs = meta["configs"]
    if not isinstance(configs, list) or not configs:
        raise HFDatasetError(f"{readme}: configs must be a list of {{config_name, data_files}}")
    files: list[DataFile] = []
    for i, entry in enumerate(configs):
        where = f"{readme}: configs[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("config_name"), str):
            raise HFDatasetError(f"{where}: needs config_name (a string) and data_files")
        name = entry["config_name"]
        for spl, patterns in _split_patterns(entry.get("data_files"), where):
            matched = []
            for pattern in patterns:
                found = _glob(folder, pattern, where)
                if not found:
                    raise HFDatasetError(f"{where} ({name}): split {spl!r}: no data file matches {pattern!r}")
                matched += found
            files += [DataFile(folder, rel, name, spl) for rel in dict.fromkeys(matched)]
    return files


def _split_patterns(data_files, where: str) -> list[tuple[str, list[str]]]:
    if isinstance(data_files, str):
        return [("train", [data_files])]
    if isinstance(data_files, list) and data_files and all(isinstance(p, str) for p in data_files):
        return [("train", list(data_files))]
    if isinstance(data_files, dict):
        data_files = [{"split": k, "path": v} for k, v in data_files.items()]
    if not isinstance(data_files, list) or not data_files:
        raise HFDatasetError(f"{where}: data_files must be a pattern, a list of patterns or of {{split, path}}")
    out = []
    for j, item in enumerate(data_files):
        path = item.get("path") if isinstance(item, dict) else None
        paths = [path] if isinstance(path, str) else path
        if not isinstance(item, dict) or not isinstance(item.get("split", "train"), str) or not (
                isinstance(paths, list) and paths and all(isinstance(p, str) for p in paths)):
            raise HFDatasetError(f"{where}: data_files[{j}] must be {{split: <name>, path: <pattern or list>}}")
        out.append((item.get("split", "train"), paths))
    return out


def _glob(folder: Path, pattern: str, where: str) -> list[str]:
    pure = PurePosixPath(pattern)
    if pure.is_absolute() or ".." in pure.parts or "://" in pattern:
        raise HFDatasetError(f"{where}: data file pattern {pattern!r} must be a path inside the dataset folder")
    regex = _glob_regex(pattern)
    out = []
    for rel in _walk(folder):
        if regex.fullmatch(rel):
            if Path(rel).suffix not in EXTENSIONS:
                raise HFDatasetError(f"{where}: {rel}: only Parquet (.parquet) and Arrow (.arrow) data files are read")
            out.append(rel)
    return sorted(out)


def _glob_regex(pattern: str) -> re.Pattern:
    """fsspec's glob as `datasets` uses it: `**` any number of folders, `*` and `?` within one, [..]."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append(r"(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(r".*")
            i += 2
        elif pattern[i] == "*":
            out.append(r"[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append(r"[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape("["))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i:end + 1])[4:-3])  # fnmatch's class, without (?s:...)\Z
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _saved(folder: Path) -> list[DataFile]:
    """A `Dataset.save_to_disk` / `DatasetDict.save_to_disk` folder."""
    if (folder / "dataset_dict.json").is_file():
        meta = _small_json(folder / "dataset_dict.json")
        names = meta.get("splits") if isinstance(meta, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) and _plain(n) for n in names):
            raise HFDatasetError(f"{folder / 'dataset_dict.json'}: splits must be a list of folder names")
        return [f for name in names for f in _saved_split(folder, name, name)]
    state = _small_json(folder / "state.json")
    name = state.get("_split") if isinstance(state, dict) else None
    return _saved_split(folder, "", name if isinstance(name, str) and name else "train")


def _saved_split(folder: Path, sub: str, split: str) -> list[DataFile]:
    state_path = folder / sub / "state.json"
    state = _small_json(state_path)
    entries = state.get("_data_files") if isinstance(state, dict) else None
    names = [e.get("filename") if isinstance(e, dict) else None for e in entries] if isinstance(entries, list) else None
    if not names or not all(isinstance(n, str) and _plain(n) and n.endswith(".arrow") for n in names):
        raise HFDatasetError(f"{state_path}: _data_files must list the split's .arrow files by name")
    return [DataFile(folder, f"{sub}/{n}" if sub else n, "default", split) for n in names]


def _plain(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..") and "\x00" not in name


def _small_json(path: Path):
    try:
        size = path.stat().st_size
        if size > MAX_README_BYTES:
            raise HFDatasetError(f"{path}: {size} bytes, over the limit of {MAX_README_BYTES} bytes")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HFDatasetError(f"{path}: not found (a save_to_disk folder has one per split)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HFDatasetError(f"{path}: cannot be read ({exc})") from None


# ---------------------------------------------------------------- opening one file safely


def _checked_path(file: DataFile) -> Path:
    """The file's real path once it is known to be a regular file inside the dataset folder (or, in an
    HF cache snapshot, inside the cached repository); HFDatasetError otherwise."""
    folder = file.root
    try:
        real = file.path.resolve(strict=True)
    except FileNotFoundError:
        raise HFDatasetError(f"{file.relpath}: not found (a broken link?)") from None
    except (OSError, RuntimeError) as exc:
        raise HFDatasetError(f"{file.relpath}: cannot be resolved ({exc})") from None
    roots = [folder.resolve()]
    if folder.parent.name == "snapshots":  # <cache>/datasets--owner--name/snapshots/<rev>/ -> ../../blobs/
        roots.append(folder.parent.parent.resolve())
    if not any(real.is_relative_to(root) for root in roots):
        raise HFDatasetError(f"{file.relpath}: leads out of the dataset folder (to {real}): not read")
    if not stat.S_ISREG(os.stat(real).st_mode):
        raise HFDatasetError(f"{file.relpath}: not a regular file")
    return real


def schema(file: DataFile):
    """The file's Arrow schema (pyarrow.Schema); HFDatasetError naming the file where it is unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    real = _checked_path(file)
    try:
        if file.format == "parquet":
            _check_footer(file, real)
            return pq.read_schema(str(real))
        with pa.memory_map(str(real)) as source:
            return pa.ipc.open_stream(source).schema
    except HFDatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything pyarrow raises on a bad file: named, not a traceback
        raise HFDatasetError(f"{file.relpath}: not a readable {file.format} file ({type(exc).__name__}: {exc})") from None


def columns(file: DataFile) -> list[str]:
    return list(schema(file).names)


def has_columns(folder: str | os.PathLike, needed: Iterable[str], *, split: str | None = None) -> bool:
    """Whether the folder's first data file (of `split`) has every column named; False for a folder
    that is no readable dataset (for a suite's looks_like)."""
    try:
        files = data_files(folder, split=split)
        return set(needed) <= set(columns(files[0]))
    except HFDatasetError:
        return False


def _check_footer(file: DataFile, real: Path) -> None:
    with open(real, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 12:
            raise HFDatasetError(f"{file.relpath}: {size} bytes: not a Parquet file")
        f.seek(size - 8)
        tail = f.read(8)
    if tail[4:] != b"PAR1":
        raise HFDatasetError(f"{file.relpath}: not a Parquet file (no PAR1 at its end)")
    footer = int.from_bytes(tail[:4], "little")
    if footer > MAX_FOOTER_BYTES:
        raise HFDatasetError(f"{file.relpath}: its metadata is {footer} bytes, over the limit of "
                             f"{MAX_FOOTER_BYTES} bytes: not read")


# ---------------------------------------------------------------- rows


def is_image_type(kind) -> bool:
    """A `datasets` Image column: struct<bytes: binary, path: string>."""
    import pyarrow as pa

    return (pa.types.is_struct(kind) and {kind.field(i).name for i in range(kind.num_fields)} == {"bytes", "path"})


def _image_kind(kind) -> str | None:
    """"image", "images" (a list of images) or None."""
    import pyarrow as pa

    if is_image_type(kind):
        return "image"
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)) \
            and is_image_type(kind.value_type):
        return "images"
    return None


def image_bytes(value) -> bytes | None:
    """A `datasets` Image cell ({"bytes": ..., "path": ...}) or plain bytes -> the encoded image, or None."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value) or None
    if isinstance(value, dict) and isinstance(value.get("bytes"), (bytes, bytearray)):
        return bytes(value["bytes"]) or None
    return None


def iter_rows(files: Iterable[DataFile], columns: Iterable[str] | None = None, *, optional: Iterable[str] = (),
              max_row_group_bytes: int = MAX_ROW_GROUP_BYTES, max_image_bytes: int = MAX_IMAGE_FILE_BYTES,
              max_text_bytes: int = MAX_TEXT_BYTES) -> Iterator[Row]:
    """Every row of the files, in order, as a dict of the columns named (every column where None;
    `optional` ones where the file has them, else absent from the record): an Image column's cell as
    its bytes (a list of images as a list of bytes), other cells as Python values. A file that cannot
    be read, or lacks a column named, is one Row without record naming the file; a row group over the
    bound, one Row without record naming its rows; a cell over a bound or an image not embedded is
    None in the record, with the row's error naming the column."""
    order = 0
    wanted = list(columns) if columns is not None else None
    extra = list(optional)
    for file in files:
        try:
            reader = _Reader(file, wanted, extra, max_row_group_bytes)
        except HFDatasetError as exc:
            order += 1
            yield Row(file, None, order, None, str(exc))
            continue
        for index, batch, error in reader.batches():
            if batch is None:
                order += 1
                yield Row(file, index, order, None, error)
                continue
            for offset in range(batch.num_rows):
                order += 1
                record, issues = _row(batch, offset, reader.kinds, max_image_bytes, max_text_bytes)
                yield Row(file, index + offset, order, record, "; ".join(issues) or None)


class _Reader:
    def __init__(self, file: DataFile, wanted: list[str] | None, extra: list[str], max_row_group_bytes: int):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.file, self.max_row_group_bytes = file, max_row_group_bytes
        self.real = _checked_path(file)
        names = list(schema(file).names)
        if wanted is not None:
            missing = [c for c in wanted if c not in names]
            if missing:
                raise HFDatasetError(f"{file.relpath}: missing column(s): {', '.join(missing)} "
                                     f"(it has: {', '.join(names)})")
            self.columns = wanted + [c for c in extra if c in names and c not in wanted]
        else:
            self.columns = names
        try:
            if file.format == "parquet":
                self.parquet = pq.ParquetFile(str(self.real), memory_map=True)
                arrow_schema = self.parquet.schema_arrow
            else:
                self.parquet = None
                arrow_schema = schema(file)
        except Exception as exc:  # noqa: BLE001
            raise HFDatasetError(f"{file.relpath}: not a readable {file.format} file ({type(exc).__name__}: {exc})") from None
        self.kinds = {c: _image_kind(arrow_schema.field(c).type) for c in self.columns}
        self._pa = pa

    def batches(self) -> Iterator[tuple[int, object, str | None]]:
        """(first row index, record batch or None, error)."""
        if self.parquet is not None:
            yield from self._parquet_batches()
        else:
            yield from self._arrow_batches()

    def _parquet_batches(self):
        meta = self.parquet.metadata
        first = 0
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            size = sum(group.column(j).total_uncompressed_size for j in range(group.num_columns)
                       if group.column(j).path_in_schema.split(".")[0] in self.columns)
            if size > self.max_row_group_bytes:
                yield first, None, (f"rows {first}-{first + group.num_rows - 1} (row group {g}): {size} bytes "
                                    f"uncompressed in the columns read, over the limit of {self.max_row_group_bytes} "
                                    "bytes: not read")
                first += group.num_rows
                continue
            index = first
            try:
                for batch in self.parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[g], columns=self.columns,
                                                       use_threads=False):
                    yield index, batch, None
                    index += batch.num_rows
            except Exception as exc:  # noqa: BLE001 - a corrupt page: named with its rows, the rest goes on
                yield index, None, (f"rows {index}-{first + group.num_rows - 1} (row group {g}) cannot be read "
                                    f"({type(exc).__name__}: {exc})")
            first += group.num_rows

    def _arrow_batches(self):
        pa = self._pa
        index = 0
        try:
            with pa.memory_map(str(self.real)) as source:
                reader = pa.ipc.open_stream(source)
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                    batch = batch.select(self.columns)
                    for start in range(0, batch.num_rows, BATCH_ROWS):
                        part = batch.slice(start, BATCH_ROWS)
                        yield index, part, None
                        index += part.num_rows
        except Exception as exc:  # noqa: BLE001 - a cut or corrupt stream: named from the row where it broke
            yield index, None, f"rows from {index} on cannot be read ({type(exc).__name__}: {exc})"


def _row(batch, offset: int, kinds: dict, max_image_bytes: int, max_text_bytes: int) -> tuple[dict, list[str]]:
    record, issues = {}, []
    for name in batch.schema.names:
        cell = batch.column(name).slice(offset, 1)
        size = cell.nbytes
        if size > MAX_CELL_BYTES:
            record[name] = None
            issues.append(f"{name}: {size} bytes, over the limit of {MAX_CELL_BYTES} bytes per cell: not read")
            continue
        value = cell.to_pylist()[0]
        kind = kinds.get(name)
        if kind == "image":
            value, issue = _image(value, name, max_image_bytes)
            issues += [issue] if issue else []
        elif kind == "images" and value is not None:
            images = []
            for i, item in enumerate(value):
                data, issue = _image(item, f"{name}[{i}]", max_image_bytes)
                issues += [issue] if issue else []
                images.append(data)
            value = images
        elif isinstance(value, str) and len(value) > max_text_bytes // 4 and len(value.encode()) > max_text_bytes:
            issues.append(f"{name}: a string of {len(value.encode())} bytes, over the limit of {max_text_bytes} bytes")
            value = None
        elif isinstance(value, (bytes, bytearray)) and len(value) > max_image_bytes:
            issues.append(f"{name}: {len(value)} bytes, over the limit of {max_image_bytes} bytes")
            value = None
        record[name] = value
    return record, issues


def _image(value, name: str, max_bytes: int) -> tuple[bytes | None, str | None]:
    if value is None:
        return None, None
    data = image_bytes(value)
    if data is None:
        path = value.get("path") if isinstance(value, dict) else None
        return None, (f"{name}: the image is not embedded in the file (its path: {path!r})" if path
                      else f"{name}: an empty image")
    if len(data) > max_bytes:
        return None, f"{name}: an image of {len(data)} bytes, over the limit of {max_bytes} bytes"
    return data, None


# ---------------------------------------------------------------- identity


def digest(files: Iterable[DataFile]) -> str:
    """sha256 over the data files: each one's relative path and bytes, in the order given (streamed)."""
    h = hashlib.sha256()
    for file in files:
        h.update(f"{file.relpath}\0".encode())
        with open(_checked_path(file), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


__all__ = ["HFDatasetError", "DataFile", "Row", "data_files", "splits", "schema", "columns", "has_columns",
           "is_image_type", "image_bytes", "iter_rows", "digest", "MAX_ROW_GROUP_BYTES", "MAX_CELL_BYTES",
           "MAX_TEXT_BYTES", "MAX_FOOTER_BYTES"]
