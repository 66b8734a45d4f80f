"""KRIS-Bench (mercurystraw/Kris_Bench): knowledge-based reasoning edits, from its release folder."""

from suites.spec import Suite

from . import combine, data, headline, layout

SUITE = Suite(
    name="kris",
    title=headline.NAME,
    reads="the release folder: <category>/annotation.json with ori_img / gt_img / ins_en / explain_en, "
          "images beside it",
    data=data,
    default_protocol="kris",
    protocols=("kris",),
    numbers=headline,
    layout=layout,
    rules=combine.RULES,
    headline_mean="micro_mean",  # summarize.py's Overall pools every score (headline.py)
    source="mercurystraw/Kris_Bench (data, metrics_*.py); ByteDance-Seed/Bagel eval/gen/kris/summarize.py",
    detect_order=60,
)
