"""Emu Edit test set (facebook/emu_edit_test_set): instruction edits scored by reference metrics against
the input image and the captions (judge.backend metrics)."""

from suites.spec import Suite

from . import data, headline, layout

SUITE = Suite(
    name="emu_edit",
    title=headline.NAME,
    reads="the downloaded Hugging Face dataset folder facebook/emu_edit_test_set (Parquet: idx, instruction, "
          "input_caption, output_caption, task, image)",
    data=data,
    default_protocol="emu_edit",
    protocols=("emu_edit",),
    numbers=headline,
    layout=layout,
    source="facebook/emu_edit_test_set (Hugging Face); metrics of the Emu Edit paper (arXiv 2311.10089) §5.1",
    detect_order=45,
)
