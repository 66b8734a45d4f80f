"""Bad input, property-based, in-process (fast): `editfleet_common.images.decode_image` (the one
decoder behind both services and benchmark validation) and the benchmark loaders. Every input
either decodes/loads correctly or raises the one named error (InvalidInput / BenchmarkError) —
never another exception. The same cases against real servers: tests/editor/test_reliability_server.py."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from editfleet_common.errors import InvalidInput
from editfleet_common.images import decode_image
from orchestrator.benchmark import BenchmarkError, load_benchmark
from tests.png_samples import encode, png_claiming

from conftest import REPO, orchestrator_cmd, png_bytes

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- images -----------------------------------------------------------------------------------
@FAST
@given(st.binary(max_size=2048))
def test_random_bytes_decode_or_are_invalid_input(data):
    try:
        img = decode_image(data, max_pixels=1_000_000)
    except InvalidInput as exc:
        assert str(exc).startswith("image: ")
    else:
        assert img.mode == "RGB" and img.width > 0 and img.height > 0


@FAST
@given(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"RIFF"]),
       st.binary(max_size=512))
def test_random_bodies_behind_real_magic_numbers_are_invalid_input(magic, body):
    with pytest.raises(InvalidInput):
        decode_image(magic + body, max_pixels=1_000_000)


@FAST
@given(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_header_claims_of_huge_dimensions_are_refused_before_decoding(width, height):
    limit = 1_000_000
    try:
        img = decode_image(png_claiming(width, height), max_pixels=limit)
    except InvalidInput as exc:
        message = str(exc)
        if width * height > limit:  # refused from the header (PIL's own bomb guard may answer first)
            assert (f"{width}x{height} = {width * height} pixels exceeds the limit of {limit}" in message
                    or "refused as a decompression bomb" in message), message
        else:  # a small claim with too little pixel data behind it
            assert "cannot decode image" in message
    else:  # only narrow claims get through: 16 bytes of pixel data fill 1-5 pixel rows (and Pillow
        # accepts missing rows of a 1-pixel-wide PNG: a known leniency, harmless at that size)
        assert width <= 5 and img.size == (width, height) and width * height <= limit


SOURCE = Image.linear_gradient("L").resize((40, 30)).convert("RGB")
SOURCE_PNG = encode(SOURCE)


@FAST
@given(st.integers(0, len(SOURCE_PNG) - 1))
def test_a_truncated_png_is_invalid_or_complete_never_half_decoded(cut):
    try:
        img = decode_image(SOURCE_PNG[:cut])
    except InvalidInput:
        return
    assert np.array_equal(np.asarray(img), np.asarray(SOURCE))  # only a cut inside the trailer may pass


@FAST
@given(st.integers(1, 64), st.integers(1, 64), st.integers(0, 255))
def test_odd_modes_become_rgb_of_the_same_size(width, height, level):
    grey = Image.new("L", (width, height), level)
    cases = {
        "CMYK jpeg": (encode(Image.new("CMYK", (width, height), (0, 0, 0, 255 - level)), "JPEG", quality=100), None),
        "CMYK tiff": (encode(Image.new("CMYK", (width, height), (0, 0, 0, 255 - level)), "TIFF"), level),
        "palette": (encode(grey.convert("P")), level),
        "palette+transparency": (encode(grey.convert("P"), transparency=level), 255),  # that colour is see-through
        "16-bit grey": (encode(Image.new("I;16", (width, height), level * 257)), level),
        "RGBA transparent": (encode(Image.new("RGBA", (width, height), (level, 0, 0, 0))), 255),  # on white
        "RGBA opaque": (encode(Image.new("RGBA", (width, height), (level, level, level, 255))), level),
        "LA half": (encode(Image.new("LA", (width, height), (0, 128))), 127),
        "1-bit": (encode(Image.new("1", (width, height), 1 if level > 127 else 0)), 255 if level > 127 else 0),
        "grey": (encode(grey), level),
    }
    for name, (data, expected) in cases.items():
        img = decode_image(data)
        assert (img.mode, img.size) == ("RGB", (width, height)), name
        if expected is not None:
            arr = np.asarray(img).astype(int)
            assert np.abs(arr - expected).max() <= 1, (name, arr.min(), arr.max(), expected)


# What EXIF orientation 1-8 asks a viewer to do to the stored pixels, written independently of PIL.
ORIENTED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


@FAST
@given(st.integers(1, 8), st.integers(2, 24), st.integers(2, 24), st.sampled_from(["PNG", "TIFF"]))
def test_exif_orientation_is_applied(orientation, width, height, fmt):
    rng = np.random.default_rng(width * 100 + height)
    stored = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(stored), fmt, exif=exif.tobytes())
    shown = np.asarray(decode_image(data))
    assert np.array_equal(shown, ORIENTED[orientation](stored)), orientation


# -- benchmark files --------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path):
    (tmp_path / "ok.png").write_bytes(png_bytes())
    return tmp_path


@FAST
@given(st.binary(max_size=600), st.sampled_from(["b.jsonl", "b.json"]))
def test_random_benchmark_bytes_load_or_are_a_benchmark_error(folder, data, name):
    path = folder / name
    path.write_bytes(data)
    try:
        bench = load_benchmark(path)
    except BenchmarkError as exc:
        assert str(exc)
    else:
        assert bench.samples


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8)
FIELD = st.one_of(JSON, st.sampled_from(["ok.png", "../ok.png", "/etc/passwd", "", " ", "物理", "a/b", "x" * 300]))


@FAST
@given(st.lists(st.fixed_dictionaries({}, optional={k: FIELD for k in ("id", "image", "instruction", "category")}),
                min_size=1, max_size=4))
def test_malformed_native_records_are_a_benchmark_error_naming_the_line(folder, records):
    path = folder / "b.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    try:
        bench = load_benchmark(path, "native")
    except BenchmarkError as exc:
        for line in str(exc).splitlines()[1:]:
            assert line.strip().startswith("- b.jsonl:") or not line.strip().startswith("-"), line
        return
    for sample in bench.samples:  # whatever loads is usable as it stands
        assert sample.instruction.strip() and sample.image_path.is_file() and folder in sample.image_path.parents


@FAST
@given(st.lists(st.fixed_dictionaries({}, optional={"subset": FIELD, "src_img_b64": FIELD, "edit_instruction_en": FIELD}),
                max_size=4) | JSON)
def test_malformed_seed_files_are_a_benchmark_error(folder, items):
    path = folder / "b.json"
    path.write_text(json.dumps(items))
    try:
        bench = load_benchmark(path, "seed")
    except BenchmarkError as exc:
        assert "b.json" in str(exc)
    else:
        assert bench.samples and all(s.instruction.strip() for s in bench.samples)


@FAST
@given(st.text(min_size=1, max_size=40).filter(lambda t: t.strip()), st.text(min_size=1, max_size=12).filter(str.strip))
def test_non_ascii_text_survives_loading(folder, instruction, category):
    path = folder / "b.jsonl"
    path.write_text(json.dumps({"id": "s1", "image": "ok.png", "instruction": instruction, "category": category},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    (sample,) = load_benchmark(path, "native").samples
    assert (sample.instruction, sample.category) == (instruction, category)


def test_very_long_instruction_is_kept_whole(folder):
    path = folder / "b.jsonl"
    long = "make it blue and " * 20_000
    path.write_text(json.dumps({"id": "s1", "image": "ok.png", "instruction": long, "category": "c"}) + "\n")
    assert load_benchmark(path).samples[0].instruction == long


def test_non_utf8_benchmark_is_a_named_cli_error(tmp_path):
    (tmp_path / "ok.png").write_bytes(png_bytes())
    good = json.dumps({"id": "a", "image": "ok.png", "instruction": "x", "category": "c"}).encode()
    (tmp_path / "b.jsonl").write_bytes(good + b"\n" + good.replace(b'"a"', b'"b"').replace(b'"x"', b'"caf\xe9"') + b"\n")
    (tmp_path / "s.json").write_bytes(b'[{"subset": "\xff\xfe"}]')
    for name, message in (("b.jsonl", "b.jsonl:2: record: not UTF-8 (invalid continuation byte at byte"),
                          ("s.json", "s.json: record: not UTF-8")):
        done = subprocess.run(orchestrator_cmd("validate", str(tmp_path / name)), cwd=REPO, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 1, done.stdout + done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
