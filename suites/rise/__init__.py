"""RISEBench (PhoenixZ810/RISEBench): temporal, causal, spatial and logical reasoning edits."""

from suites.spec import Suite

from . import combine, data, headline, layout

SUITE = Suite(
    name="rise",
    title=headline.NAME,
    reads="a .json list of index / category / instruction / image rows, images under benchmark.image_root",
    data=data,
    default_protocol="rise",
    protocols=("rise",),
    numbers=headline,
    layout=layout,
    rules=combine.RULES,
    options=("image_root",),
    source=headline.SOURCE,
    detect_order=40,
)
