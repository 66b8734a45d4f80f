"""The arena (issue 30): models ranked head to head from pairwise judgments.

`ratings`: GEditBench v2's joint Davidson–Bradley–Terry fit with its prompt-cluster bootstrap,
reproduced; `matches`: its match files read and written, its pair orientation; `pairing`: adaptive
choice of the next pairs to judge (these three pure and transport-free). The `orchestrator arena`
command: `command` (what is judged, resume, the fit), `players` (runs as players), `judging` (pair
judgments over the judge fleet, judgments.jsonl), `outputs` (arena.json, leaderboard.csv,
judgments.parquet, match files) and `page` (arena.html).
"""
