"""A benchmark image the run cannot take is named by its file and said as its size against the limit
and the flag that sets it (issue 27): a 12000² PNG used to show Pillow's "could be decompression bomb
DOS attack" text, an unreadable file "<_io.BytesIO object at 0x...>". `orchestrator validate` as a user
runs it, on a real 12000² PNG (all zero, 140 KB compressed); the bound check_image applies is the
run's own (its services' --max-input-pixels: run_preflight passes it, nothing is rebound)."""

from __future__ import annotations

import struct
import zlib

from conftest import png_bytes, run_orchestrator, write_native

from editfleet_common.errors import InvalidInput
from editfleet_common.images import decode_image, header_size
from suites.shared.samples import Sample, check_image
from tests.png_samples import png_claiming


def zero_png(width: int, height: int) -> bytes:
    """A real greyscale PNG of zeros, compressed row by row (never held decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\0" * (width + 1)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_validate_names_the_file_the_size_and_the_limit(tmp_path):
    folder = tmp_path / "bench"
    path = write_native(folder, [
        {"id": "huge", "category": "c", "instruction": "Make it red.", "image": "huge.png"},
        {"id": "garbage", "category": "c", "instruction": "Make it red.", "image": "garbage.png"},
        {"id": "fine", "category": "c", "instruction": "Make it red.", "image": "fine.png"},
    ], {"huge.png": zero_png(12000, 12000), "garbage.png": b"not an image at all", "fine.png": png_bytes()})
    code, output = run_orchestrator("validate", str(path), timeout=120)
    assert code != 0, output
    assert (f"bench.jsonl:1: sample 'huge': image: 12000x12000 = 144000000 pixels exceeds the limit of 40000000 "
            f"(--max-input-pixels, in editor.server_args / judge.server_args): {folder / 'huge.png'}") in output
    assert (f"bench.jsonl:2: sample 'garbage': image: cannot decode image (not an image format Pillow reads; 19 bytes "
            f"starting b'not an i'): {folder / 'garbage.png'}") in output
    assert "bomb" not in output and "BytesIO" not in output and "'fine'" not in output


def test_the_limit_is_the_callers_own(tmp_path):
    big = zero_png(12000, 12000)
    # over Pillow's own guard (89 M), under a service's raised limit: the header decides, and it fits
    assert header_size(big, max_pixels=150_000_000) == (12000, 12000)
    for claim in (png_claiming(12000, 12000), png_claiming(30000, 30000)):  # Pillow's warning, then its error
        try:
            decode_image(claim, field="edited_image", source="e.png")
        except InvalidInput as exc:
            assert str(exc).startswith("edited_image: ") and "pixels exceeds the limit of 40000000 (--max-input-pixels)" \
                in str(exc) and str(exc).endswith(": e.png") and "bomb" not in str(exc)
        else:
            raise AssertionError("a 144 M / 900 M pixel claim was decoded")
    image = tmp_path / "mid.png"
    image.write_bytes(zero_png(3000, 3000))
    sample = Sample(id="mid", category="c", instruction="i", image_path=image)
    assert check_image(sample) is None  # 9 M pixels: under the default 40 M
    assert check_image(sample, max_pixels=5_000_000) == (
        f"image: 3000x3000 = 9000000 pixels exceeds the limit of 5000000 (--max-input-pixels, in editor.server_args "
        f"/ judge.server_args): {image}")
