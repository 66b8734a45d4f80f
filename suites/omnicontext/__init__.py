"""OmniContext (VectorSpaceLab/OmniGen2 omnicontext/): in-context editing from several reference images,
judged on prompt following and subject consistency (0-10), overall sqrt(PF * SC)."""

from suites.spec import Suite

from . import combine, data, headline, layout

SUITE = Suite(
    name="omnicontext",
    title=headline.NAME,
    reads="the downloaded Hugging Face dataset folder OmniGen2/OmniContext (Parquet: key, task_type, instruction, "
          "instruction_language, input_images: a list of images), or a .jsonl of those fields with input_images a "
          "list of image paths",
    data=data,
    default_protocol="omnicontext",
    protocols=("omnicontext",),
    numbers=headline,
    layout=layout,
    rules=combine.RULES,
    headline_mean="macro_mean",  # calculate_statistics.py's Average: the mean of the task types' means
    options=("language",),
    source="VectorSpaceLab/OmniGen2 omnicontext/ (test_omnicontext_score.py, prompt_generator.py, "
           "calculate_statistics.py); Hugging Face OmniGen2/OmniContext (data)",
    detect_order=5,  # before GEdit-Bench's (key, task_type): OmniContext's rows have input_images lists
)
