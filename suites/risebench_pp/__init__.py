"""RISEBench++ (PhoenixZ810/RISEBench, folder RISEBench++/): reasoning-informed editing in six dimensions
(temporal, causal, spatial, logical, counterfactual, multi-turn hybrid), English and Chinese."""

from suites.spec import Suite

from . import combine, data, headline, layout

SUITE = Suite(
    name="risebench_pp",
    title=headline.NAME,
    reads="a .json list of index / category / subcategory / task_type / instruction / image (a list) rows, "
          "images under benchmark.image_root",
    data=data,
    default_protocol="risebench-pp",
    protocols=("risebench-pp",),
    numbers=headline,
    layout=layout,
    rules=combine.RULES,
    options=("image_root", "language"),
    source=headline.SOURCE,
    detect_order=35,  # before RISEBench's rows (a string image): RISEBench++'s have image lists and subcategory
)
