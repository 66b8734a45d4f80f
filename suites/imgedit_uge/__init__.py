"""ImgEdit-Bench, UGE suite (PKU-YuanGroup/ImgEdit, Benchmark/UGE): understanding-grounding-editing."""

from suites.spec import Suite

from . import data, headline, layout

SUITE = Suite(
    name="imgedit_uge",
    title=headline.NAME,
    reads="UGE_edit.json: a .json object key -> id / prompt (no edit_type), images under benchmark.image_root",
    data=data,
    default_protocol="imgedit-uge",
    protocols=("imgedit-uge",),
    numbers=headline,
    layout=layout,
    options=("image_root",),
    source="PKU-YuanGroup/ImgEdit Benchmark/UGE (UGE_edit.json, UGE_bench.py, get_average_score.py)",
    detect_order=31,
)
