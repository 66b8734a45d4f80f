"""MagicBrush (OSU-NLP-Group/MagicBrush): instruction edits against ground-truth outputs, scored by
reference metrics (judge.backend metrics)."""

from suites.spec import Suite

from . import data, headline, layout

SUITE = Suite(
    name="magicbrush",
    title=headline.NAME,
    reads="the test release folder: edit_sessions.json (img_id -> turns of input / output / instruction), "
          "images/<img_id>/, local_descriptions.json",
    data=data,
    default_protocol="magicbrush",
    protocols=("magicbrush",),
    numbers=headline,
    layout=layout,
    source="OSU-NLP-Group/MagicBrush (test split zip; evaluation/image_eval.py)",
    detect_order=55,
)
