"""A stand-in `nvidia-smi` (this machine has no GPU), first on PATH for a service or the orchestrator:
`nvidia-smi -L` lists the GPUs given, and `nvidia-smi --query-gpu=index,uuid,memory.free,memory.total
--format=csv,noheader,nounits` (the one query editfleet_common.memory_fit makes, in that field order)
answers their memory in MiB as the real one does ("0, GPU-0, 40960, 81559").
"""

from __future__ import annotations

import os
from pathlib import Path

H100_MIB = 81559  # an H100 80GB HBM3's memory.total as nvidia-smi reports it


def fake_nvidia_smi(folder: Path, free_mib: list[int], total_mib: int = H100_MIB) -> dict[str, str]:
    """Write the stand-in into `folder` for GPUs with `free_mib` free each; the PATH that puts it first."""
    folder.mkdir(parents=True, exist_ok=True)
    listing = "".join(f"echo 'GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i})'\n" for i in range(len(free_mib)))
    memory = "".join(f"echo '{i}, GPU-{i}, {free}, {total_mib}'\n" for i, free in enumerate(free_mib))
    script = folder / "nvidia-smi"
    script.write_text(f'#!/bin/sh\ncase "$*" in\n  *--query-gpu=*)\n{memory}    ;;\n  *)\n{listing}    ;;\nesac\n')
    script.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}/usr/bin:/bin"}
