"""Shared pieces of the editor tests: the tiny model, a real editor server process, images."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from editfleet_common.launch import REPO_ROOT, ServiceProcess, free_port, venv_python

TINY_MODEL = REPO_ROOT / "models" / "tiny-qwen-image-edit"
TINY_2509 = REPO_ROOT / "models" / "tiny-qwen-image-edit-2509"  # QwenImageEditPlusPipeline
TINY_2511 = REPO_ROOT / "models" / "tiny-qwen-image-edit-2511"  # the same with zero_cond_t
TINY_KONTEXT = REPO_ROOT / "models" / "tiny-flux-kontext"
THREADS = "2"


def _needs(model: Path) -> Path:
    if not (model / "model_index.json").is_file():
        pytest.fail(f"{model} is missing: run `make models` (or `make test`, which makes it first)", pytrace=False)
    return model


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return _needs(TINY_MODEL)


@pytest.fixture(scope="session")
def tiny_2509() -> Path:
    return _needs(TINY_2509)


@pytest.fixture(scope="session")
def tiny_2511() -> Path:
    return _needs(TINY_2511)


@pytest.fixture(scope="session")
def tiny_kontext() -> Path:
    return _needs(TINY_KONTEXT)


def make_lora(path: Path, model: Path, *, rank: int = 4, seed: int = 0, std: float = 0.5) -> Path:
    """A random LoRA for `model`'s transformer (tools/make_tiny_lora.py), written to `path`."""
    import json

    from tools.make_tiny_lora import random_lora_state_dict, save

    config = json.loads((model / "transformer" / "config.json").read_text())
    save(random_lora_state_dict(config, rank=rank, seed=seed, std=std), path)
    return path


@pytest.fixture
def client(server):
    """A client of the test module's own `server` fixture (an editor process)."""
    from editor_service.client import EditorClient

    with EditorClient(server.address) as c:
        yield c


def start_editor(log_dir: Path, *extra_args: str, name: str = "editor", model: Path = TINY_MODEL) -> ServiceProcess:
    """Start `python -m editor_service` on a tiny model in the editor venv (not yet waited for)."""
    port = free_port()
    argv = [
        venv_python("editor"), "-m", "editor_service",
        "--model", str(model), "--device", "cpu", "--port", str(port), "--threads", THREADS,
        *extra_args,
    ]
    env = {"EDITFLEET_CACHE_DIR": str(log_dir / "cache"), "OMP_NUM_THREADS": THREADS}
    return ServiceProcess(name=name, argv=argv, port=port, env=env, log_path=log_dir / f"{name}.log").start()


def png_bytes(width: int, height: int, color=(200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def photo_like_png(width: int = 96, height: int = 64) -> bytes:
    """A source with structure (a gradient and a square), so edits of it are not all flat."""
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    img.paste((30, 90, 220), (width // 4, height // 4, width // 2, height // 2))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def zero_width_png() -> bytes:
    """A well-formed PNG whose header says 0x16 (PIL refuses to write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 0, 16, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def big_png(width: int, height: int) -> bytes:
    """A large-dimension image that compresses to almost nothing (a decompression-bomb shape)."""
    buf = io.BytesIO()
    Image.new("1", (width, height)).save(buf, format="PNG")
    return buf.getvalue()


def flat_png(width: int, height: int) -> bytes:
    """A one-colour RGB PNG of any size, made row by row (never held decoded): zlib shrinks it about
    1000:1, so 6300x6300 (119 MB of pixels) is ~125 KB on the wire, as in issue 28's burst."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\0" + b"\x80" * (3 * width)  # filter byte "none", then grey pixels
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def read_log(proc: ServiceProcess) -> str:
    return Path(proc.log_path).read_text(errors="replace") if proc.log_path else ""


def pytest_configure(config):
    # The services run in their own processes; keep this one from fighting them for the 2 cores.
    os.environ.setdefault("OMP_NUM_THREADS", THREADS)
    config.addinivalue_line("markers", "soak: long memory soak (`make soak`), left out of `make test`")


def pytest_collection_modifyitems(config, items):
    if "soak" not in (config.getoption("markexpr") or ""):
        skip = pytest.mark.skip(reason="soak test: run with `make soak` (pytest -m soak)")
        for item in items:
            if "soak" in item.keywords:
                item.add_marker(skip)


def wait_for_log(proc: ServiceProcess, pattern: str, timeout: float = 30.0):
    """The first match of `pattern` in the service log, waiting for it to be written."""
    import re
    import time

    until = time.monotonic() + timeout
    while True:
        found = re.search(pattern, read_log(proc))
        if found or time.monotonic() > until:
            assert found, f"{pattern!r} not in the log:\n{read_log(proc)[-3000:]}"
            return found
        time.sleep(0.2)
