"""The one shape every benchmark format is loaded into, and the checks run before any editor starts."""

from __future__ import annotations

import base64
import os
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from editfleet_common.errors import InvalidInput
from editfleet_common.images import decode_image


class BenchmarkError(Exception):
    """A benchmark that cannot be run; the message lists every offending sample."""


@dataclass
class Sample:
    id: str
    category: str
    instruction: str
    description: str = ""
    image_path: Path | None = None   # the source image on disk, or
    image_bytes: bytes | None = None  # the encoded source image itself (embedded formats)
    language: str = ""
    where: str = ""                   # "file:line" or "file[index]": for error messages
    order: int = 0                    # line number or index in the file: problems are listed in file order
    extras: dict = field(default_factory=dict)  # format-specific fields kept for the record

    def source_bytes(self) -> bytes:
        if self.image_bytes is not None:
            return self.image_bytes
        if self.image_path is None:
            raise BenchmarkError(f"sample {self.id!r}: no source image")
        return self.image_path.read_bytes()

    def record(self) -> dict:
        """What results files keep about a sample (no image bytes)."""
        out = {"id": self.id, "category": self.category, "instruction": self.instruction}
        if self.description:
            out["description"] = self.description
        if self.language:
            out["language"] = self.language
        if self.image_path is not None:
            out["image_path"] = str(self.image_path)
        return out


@dataclass
class Problem:
    where: str
    sample_id: str | None
    message: str
    order: int = 0

    def __str__(self) -> str:
        who = f"sample {self.sample_id!r}" if self.sample_id else "record"
        return f"{self.where}: {who}: {self.message}"


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


def decode_b64(text: str) -> bytes:
    """Strict base64, also accepting a data: URI prefix."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    return base64.b64decode(text, validate=True) if text.strip() else b""


def resolve_inside(base_dir: Path, relative: str) -> tuple[Path | None, str | None]:
    """The path of `relative` under base_dir, or a problem when it is absolute or escapes it."""
    if not relative:
        return None, "empty image path"
    candidate = Path(relative)
    if candidate.is_absolute():
        return None, f"image path {relative!r} is absolute; paths are relative to the benchmark file"
    try:
        resolved = (base_dir / candidate).resolve()
    except (OSError, RuntimeError) as exc:  # e.g. a symlink loop
        return None, f"image path {relative!r} cannot be resolved ({exc})"
    try:
        resolved.relative_to(base_dir.resolve())
    except ValueError:
        return None, f"image path {relative!r} escapes the benchmark folder {str(base_dir)!r}"
    return resolved, None


def check_image(sample: Sample) -> str | None:
    """None when the source image exists and decodes, else what is wrong with it."""
    if sample.image_path is not None:
        try:
            if not sample.image_path.exists():
                return f"image not found: {sample.image_path}"
            if not sample.image_path.is_file():
                return f"image is not a file: {sample.image_path}"
            data = sample.image_path.read_bytes()
        except OSError as exc:  # a name too long, no permission, ...: this sample's problem, listed with the rest
            return f"cannot read image {sample.image_path}: {exc.strerror or exc}"
    elif sample.image_bytes is not None:
        data = sample.image_bytes
    else:
        return "no source image"
    try:
        decode_image(data, field="image")
    except InvalidInput as exc:
        return str(exc)
    return None


def validate(samples: list[Sample], *, pre_problems: list[Problem] | None = None) -> None:
    """Raise one BenchmarkError listing every offending sample: ids, instructions, images."""
    problems = list(pre_problems or [])
    seen: dict[str, str] = {}
    with_images = [s for s in samples if s.image_path is not None or s.image_bytes is not None]
    # Decoding every image is the slow part (a full benchmark is hundreds of megapixels); PIL
    # decodes outside the GIL, so threads help.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        image_issues = dict(zip(map(id, with_images), pool.map(check_image, with_images)))
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
    problems.sort(key=lambda p: p.order)  # stable: a sample's problems stay together, in file order
    if problems:
        raise BenchmarkError(
            f"{len(problems)} problem(s) in the benchmark; nothing was started:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


