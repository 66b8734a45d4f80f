"""The seed document's benchmark format (one JSON list of items) and its 0-10 judge protocol."""

from suites.spec import Suite

from . import data

SUITE = Suite(
    name="seed",
    title="seed",
    reads="a .json list of items with subset / src_img_b64 / edit_instruction_en",
    data=data,
    default_protocol="seed-0-10",
    protocols=("seed-0-10",),
    source="the seed document (shared/seed/): a multi-GPU Qwen-Image-Edit + Qwen3-VL benchmark's v3 notes",
    detect_order=90,
)
