"""RE-Edit (Yixuan-Ding-ZJU/RE-Edit): reasoning edits judged per dimension, IF and SC."""

from suites.spec import Suite

from . import combine, data, headline, layout

SUITE = Suite(
    name="re-edit",
    title=headline.NAME,
    reads="RE-Edit.json: a .json list of seed records with original_description_en, rationale_short_en, "
          "original_image_path",
    data=data,
    default_protocol="re-edit",
    protocols=("re-edit",),
    numbers=headline,
    layout=layout,
    rules=combine.RULES,
    source="Yixuan-Ding-ZJU/RE-Edit (Hugging Face dataset, file RE-Edit.json; single_scoring_part_vllm/)",
    detect_order=20,
)
