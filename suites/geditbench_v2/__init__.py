"""GEditBench v2 (ZhangqiJiang07/GEditBench_v2): models ranked head to head on pairs of edits, judged on
visual consistency (VC), visual quality (VQ) and instruction following (IF), rated by its joint
Davidson-Bradley-Terry fit (`orchestrator arena`; orchestrator/arena/ratings.py)."""

from suites.spec import Suite

from . import data, layout

SUITE = Suite(
    name="geditbench_v2",
    title="GEditBench v2",
    reads="the release folder: data/*.parquet with key / instruction / source_image",
    data=data,
    default_protocol="geditbench-v2",
    protocols=("geditbench-v2",),
    layout=layout,
    source="ZhangqiJiang07/GEditBench_v2 (pairwise prompts, pairing, elo_score.py); Hugging Face "
           "GEditBench-v2/GEditBench-v2 (data) and GEditBench-v2/GEditBench-v2-CandidatesGallery (published edits)",
    detect_order=65,
)
