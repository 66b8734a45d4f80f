"""The arena (issue 30): models ranked head to head from pairwise judgments.

`ratings`: GEditBench v2's joint Davidson–Bradley–Terry fit with its prompt-cluster bootstrap,
reproduced; `matches`: its match files read and written; `pairing`: adaptive choice of the next
pairs to judge. Pure and transport-free: the `orchestrator arena` command is to call these.
"""
