"""The one shape every benchmark format is loaded into, and the checks run before any editor starts."""

from __future__ import annotations

import base64
import os
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from editfleet_common.errors import InvalidInput
from editfleet_common.images import DEFAULT_MAX_PIXELS, MAX_IMAGE_FILE_BYTES, decode_image
from editfleet_common.safe_files import UnsafePath, read_regular


class BenchmarkError(Exception):
    """A benchmark that cannot be run; the message lists every offending sample."""


@dataclass
class Sample:
    id: str
    category: str
    instruction: str
    description: str = ""
    image_path: Path | None = None   # the (first) source image on disk, or
    image_bytes: bytes | None = None  # the encoded source image itself (embedded formats)
    language: str = ""
    where: str = ""                   # "file:line" or "file[index]": for error messages
    order: int = 0                    # line number or index in the file: problems are listed in file order
    extras: dict = field(default_factory=dict)  # format-specific fields kept for the record
    more_images: list[Path] = field(default_factory=list)  # further input images, in order (native "images")
    # or embedded (a dataset row's list of images after the first, beside image_bytes: OmniContext's Parquet)
    more_image_bytes: list[bytes] = field(default_factory=list)
    edit_args: dict = field(default_factory=dict)  # this sample's own pipeline arguments (native "extras")
    # What a suite's judge sees besides the edit and its inputs: reference images (a ground truth, a
    # reference result) and text variables of its prompts (e.g. explain_en, reference_txt), by name.
    reference_images: list[Path] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    # A turn of a multi-turn chain: the id of the sample whose edit is this one's (first) input image,
    # in place of image_path / image_bytes (MagicBrush's sessions). "" for a sample with its own input.
    input_from: str = ""

    def source_bytes(self) -> bytes:
        """The first input image (the one the judge is shown)."""
        if self.image_bytes is not None:
            return self.image_bytes
        if self.image_path is None:
            if self.input_from:
                raise BenchmarkError(f"sample {self.id!r}: its input is the edit of {self.input_from!r} (input_from), "
                                     "not made yet")
            raise BenchmarkError(f"sample {self.id!r}: no source image")
        return read_regular(self.image_path, MAX_IMAGE_FILE_BYTES)

    def source_images(self) -> list[bytes]:
        """Every input image of the edit, in order."""
        return [self.source_bytes(), *self.more_sources()]

    def more_sources(self) -> list[bytes]:
        """The input images after the first, in order (read from their files, or embedded)."""
        return [*(read_regular(path, MAX_IMAGE_FILE_BYTES) for path in self.more_images), *self.more_image_bytes]

    def input_count(self) -> int:
        """How many input images the edit has (the first: its own, or its chain's turn before)."""
        return 1 + len(self.more_images) + len(self.more_image_bytes)

    def image_paths(self) -> list[Path]:
        return ([self.image_path] if self.image_path is not None else []) + list(self.more_images)

    def judge_variables(self) -> dict[str, str]:
        """The template variables the judge's prompts may use: the description and the suite's own."""
        out = {"original_description": self.description} if self.description else {}
        out.update(self.variables)
        return out

    def record(self) -> dict:
        """What results files keep about a sample (no image bytes)."""
        out = {"id": self.id, "category": self.category, "instruction": self.instruction}
        if self.description:
            out["description"] = self.description
        if self.language:
            out["language"] = self.language
        if self.image_path is not None:
            out["image_path"] = str(self.image_path)
        if self.more_images:
            out["image_paths"] = [str(p) for p in self.image_paths()]
        if self.more_image_bytes:
            out["embedded_images"] = self.input_count()
        if self.edit_args:
            out["extras"] = self.edit_args
        if self.reference_images:
            out["reference_paths"] = [str(p) for p in self.reference_images]
        if self.input_from:
            out["input_from"] = self.input_from
        return out


@dataclass
class Problem:
    where: str
    sample_id: str | None
    message: str
    order: int = 0

    def __str__(self) -> str:
        who = f"sample {self.sample_id!r}" if self.sample_id else "record"
        if self.sample_id and len(self.sample_id) > SHOWN_ID_CHARS:  # named by its start, not printed whole
            who = f"sample {self.sample_id[:SHOWN_ID_CHARS]!r}... ({len(self.sample_id.encode())} bytes)"
        return f"{self.where}: {who}: {self.message}"


SHOWN_ID_CHARS = 80


# Ids become file names (edits/<category>/<id>.png): they must not be able to name another place.
MAX_ID_BYTES = 200


def id_problem(sample_id: str) -> str | None:
    if not sample_id:
        return "empty id"
    if sample_id in (".", ".."):
        return f"id {sample_id!r} is not a usable file name"
    bad = [c for c in sample_id if c in "/\\\x00" or unicodedata.category(c).startswith("C")]
    if bad:
        return f"id contains path separators or control characters ({', '.join(map(repr, sorted(set(bad))))})"
    if len(sample_id.encode()) > MAX_ID_BYTES:
        return f"id longer than {MAX_ID_BYTES} bytes"
    return None


def safe_path_component(name: str) -> str:
    """A category name as one directory level: non-ASCII kept, separators and controls replaced."""
    cleaned = "".join(
        "_" if c in "/\\\x00" or unicodedata.category(c).startswith("C") else c for c in name
    ).strip()
    if cleaned in ("", ".", ".."):
        cleaned = "_" + cleaned.replace(".", "_")
    # 120 characters, and at most 240 bytes: file names are limited to 255 bytes, not characters.
    return cleaned[:120].encode("utf-8")[:240].decode("utf-8", errors="ignore")


# A sample's own pipeline arguments ("extras"): these names set the edit request's own fields (the rest go
# to the pipeline as call arguments); these others belong to the wrapper and cannot be set per sample.
SAMPLE_REQUEST_FIELDS = {"width": int, "height": int, "num_inference_steps": int, "guidance_scale": float,
                         "negative_prompt": str}
NOT_PER_SAMPLE = ("image", "prompt", "seed", "generator", "output_type", "return_dict", "num_images_per_prompt")


def edit_args_problem(args) -> str | None:
    """None when a sample's "extras" can be sent, else what is wrong with them."""
    if not isinstance(args, dict):
        return f"extras must be a JSON object of pipeline arguments, got {type(args).__name__}"
    problems = []
    for key, value in args.items():
        if key in NOT_PER_SAMPLE:
            problems.append(f"extras.{key} cannot be set per sample (the sample's own fields and seed decide it)")
        elif key in SAMPLE_REQUEST_FIELDS:
            kind = SAMPLE_REQUEST_FIELDS[key]
            ok = (isinstance(value, str) if kind is str else
                  isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or value == int(value)))
            if not ok or (kind is int and value < (0 if key in ("width", "height") else 1)):
                problems.append(f"extras.{key} must be {'a string' if kind is str else 'a number' if kind is float else 'a positive integer'}, got {value!r}")
    if ("width" in args) != ("height" in args):
        problems.append("extras.width and extras.height go together")
    return "; ".join(problems) or None


def decode_b64(text: str) -> bytes:
    """Strict base64, also accepting a data: URI prefix."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    return base64.b64decode(text, validate=True) if text.strip() else b""


def resolve_inside(base_dir: Path, relative: str, *, root: Path | None = None) -> tuple[Path | None, str | None]:
    """The path of `relative` under base_dir with every link resolved (folders included), or a problem
    when it is absolute or, once resolved, lies outside `root` (default: base_dir itself; a suite whose
    files sit in subfolders of the benchmark folder names that folder, so that a subfolder that is a
    link out of it is caught too)."""
    if not relative:
        return None, "empty image path"
    candidate = Path(relative)
    if candidate.is_absolute():
        return None, f"image path {relative!r} is absolute; paths are relative to the benchmark file"
    root = base_dir if root is None else root
    try:
        resolved = (base_dir / candidate).resolve()
        real_root = root.resolve()
    except (OSError, RuntimeError) as exc:  # e.g. a symlink loop
        return None, f"image path {relative!r} cannot be resolved ({exc})"
    try:
        resolved.relative_to(real_root)
    except ValueError:
        via = "" if root == base_dir else f" (through {str(base_dir)!r})"
        return None, f"image path {relative!r} escapes the benchmark folder {str(root)!r}{via}: it leads to {str(resolved)!r}"
    return resolved, None


# Where a run's bound on the pixels of an image is set: the services' flag, in the run config.
PIXEL_LIMIT_FLAG = "--max-input-pixels, in editor.server_args / judge.server_args"


def check_image(sample: Sample, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """None when every input (and reference) image exists and decodes within `max_pixels` (the run's:
    what its services take), else what is wrong (each named, with its file)."""
    issues = []
    if sample.image_bytes is not None and sample.image_path is None:
        embedded = [sample.image_bytes, *sample.more_image_bytes]
        sources = [(f"images[{i}]" if len(embedded) > 1 else "image", None, data) for i, data in enumerate(embedded)]
    elif sample.image_path is None:
        return "no source image"
    else:
        field = "images[{}]" if sample.more_images else "image"
        sources = [(field.format(i), path, None) for i, path in enumerate(sample.image_paths())]
    sources += [(f"reference_images[{i}]", path, None) for i, path in enumerate(sample.reference_images)]
    for field, path, data in sources:
        # several images: say which one
        which = f"{field}: " if sample.input_count() > 1 or field.startswith("reference") else ""
        if path is not None:
            try:
                if not path.exists():
                    issues.append(f"{which}image not found: {path}")
                    continue
                if not path.is_file():
                    issues.append(f"{which}image is not a file: {path}")
                    continue
                data = read_regular(path, MAX_IMAGE_FILE_BYTES)  # refused from its size, before it is read
            except UnsafePath as exc:
                issues.append(f"{which}{exc}")
                continue
            except OSError as exc:  # a name too long, no permission, ...: this sample's problem, listed with the rest
                issues.append(f"{which}cannot read image {path}: {exc.strerror or exc}")
                continue
        try:
            decode_image(data, field=field, max_pixels=max_pixels, flag=PIXEL_LIMIT_FLAG,
                         source=str(path) if path is not None else None)
        except InvalidInput as exc:
            issues.append(str(exc))
    return "; ".join(issues) or None


def chain_turns(samples: list[Sample]) -> dict[str, int]:
    """The turn of each sample of a chain (1: the first, which has an input of its own; a sample whose
    input_from names another is one turn after it), by id; samples in no chain are left out. Meant for
    samples whose chains passed `chain_problems` (a name of no sample counts as a first turn's input,
    a cycle's turns are counted once round)."""
    by_id = {s.id: s for s in samples}
    followed = {s.input_from for s in samples if s.input_from}
    turns: dict[str, int] = {}
    for sample in samples:
        if not (sample.input_from or sample.id in followed) or sample.id in turns:
            continue
        path, current = [], sample.id
        while current not in turns and current not in path:
            path.append(current)
            if by_id[current].input_from not in by_id:
                break
            current = by_id[current].input_from
        base = turns.get(current, 0)
        for n, step in enumerate(reversed(path), start=1):
            turns[step] = base + n
    return turns


def chain_problems(samples: list[Sample], left_out: dict[str, str] | None = None) -> list[Problem]:
    """What is wrong with the chains (input_from) of `samples`: an id that names no sample, or one
    that the run's --categories / --limit left out (`left_out`: id -> where, of the benchmark's other
    samples), the sample itself, a cycle (each member named once, where the cycle is met first)."""
    problems = []
    by_id: dict[str, Sample] = {}
    for sample in samples:
        by_id.setdefault(sample.id, sample)
    bad: set[str] = set()
    for sample in samples:
        name = sample.input_from
        if not name:
            continue
        if name == sample.id:
            problems.append(Problem(sample.where, sample.id, "input_from names the sample itself", sample.order))
        elif name not in by_id:
            if left_out and name in left_out:
                message = (f"input_from {name!r}: that sample ({left_out[name]}) is left out of this run by "
                           "--categories / --limit; a chain's turns run together")
            else:
                message = f"input_from {name!r}: no sample with that id in the benchmark"
            problems.append(Problem(sample.where, sample.id, message, sample.order))
        else:
            continue
        bad.add(sample.id)
    # Each sample names at most one other: following the names from any sample either ends or loops.
    state: dict[str, int] = {}  # 1: on the path being followed, 2: settled
    for sample in samples:
        path = []
        current = sample.id
        while current in by_id and current not in bad and state.get(current) is None:
            state[current] = 1
            path.append(current)
            current = by_id[current].input_from
        if current in by_id and state.get(current) == 1:  # back on this path: a cycle
            loop = path[path.index(current):]
            first = by_id[loop[0]]
            problems.append(Problem(first.where, first.id, "input_from makes a cycle: "
                                    + " -> ".join(repr(i) for i in loop + [loop[0]]), first.order))
        for member in path:
            state[member] = 2
    return problems


def validate(samples: list[Sample], *, pre_problems: list[Problem] | None = None,
             left_out: dict[str, str] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise one BenchmarkError listing every offending sample: ids, instructions, images, chains
    (`left_out`: the benchmark's samples that the run's filters leave out, id -> where)."""
    problems = list(pre_problems or [])
    seen: dict[str, str] = {}
    with_images = [s for s in samples if s.image_path is not None or s.image_bytes is not None]
    # Decoding every image is the slow part (a full benchmark is hundreds of megapixels); PIL
    # decodes outside the GIL, so threads help.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        image_issues = dict(zip(map(id, with_images), pool.map(partial(check_image, max_pixels=max_pixels), with_images)))
    for sample in samples:
        def add(message: str, sample=sample):
            problems.append(Problem(sample.where, sample.id or None, message, sample.order))

        issue = id_problem(sample.id)
        if issue:
            add(issue)
        elif sample.id in seen:
            add(f"duplicate id (first at {seen[sample.id]})")
        else:
            seen[sample.id] = sample.where
        if not sample.instruction.strip():
            add("empty instruction")
        if not sample.category.strip():
            add("empty category")
        # A sample without an image already has its problem listed by the loader.
        if image_issues.get(id(sample)):
            add(image_issues[id(sample)])
    problems += chain_problems(samples, left_out)
    problems.sort(key=lambda p: p.order)  # stable: a sample's problems stay together, in file order
    if problems:
        raise BenchmarkError(
            f"{len(problems)} problem(s) in the benchmark; nothing was started:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


