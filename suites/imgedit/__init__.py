"""ImgEdit-Bench, basic suite (PKU-YuanGroup/ImgEdit, Benchmark/Basic)."""

from suites.spec import Suite

from . import combine, data, headline, layout

SUITE = Suite(
    name="imgedit",
    title=headline.NAME,
    reads="basic_edit.json: a .json object key -> id / prompt / edit_type, images under benchmark.image_root",
    data=data,
    default_protocol="imgedit",
    protocols=("imgedit",),
    numbers=headline,
    layout=layout,
    rules=combine.RULES,
    options=("image_root",),
    source="PKU-YuanGroup/ImgEdit Benchmark/Basic (basic_bench.py, step1_get_avgscore.py, step2_typescore.py)",
    detect_order=30,
)
