"""GEdit-Bench (stepfun-ai/GEdit-Bench), judged with VIEScore as Step1X-Edit's scripts do."""

from suites.spec import Suite

from . import combine, data, headline, layout

SUITE = Suite(
    name="gedit",
    title=headline.NAME,
    reads="the Hugging Face dataset folder as downloaded (Arrow or Parquet files with key / task_type / instruction / "
          "instruction_language / input_image), or a .jsonl export of it",
    data=data,
    default_protocol="viescore",
    protocols=("viescore",),
    numbers=headline,
    layout=layout,
    rules=combine.RULES,
    headline_mean="macro_mean",
    options=("language",),
    source="stepfun-ai/GEdit-Bench (data); stepfun-ai/Step1X-Edit GEdit-Bench/ (VIEScore prompts, statistics)",
    detect_order=10,
)
