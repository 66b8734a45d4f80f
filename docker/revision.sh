#!/usr/bin/env bash
# The revision the images are labelled with (org.opencontainers.image.revision): the short HEAD,
# with "-dirty" when what the images are built from differs from HEAD: a modified, staged, deleted or
# untracked (not ignored) file of the wheel's sources (the packages, protos/, pyproject.toml, setup.py,
# MANIFEST.in), requirements-torch.txt or docker/ (the Dockerfiles). Ignored build products (dist/,
# gen/, .cache/wheelhouse/) are made from those by `make images`.
set -euo pipefail
cd "$(dirname "$0")/.."
head=$(git rev-parse --short HEAD 2>/dev/null) || { echo unknown; exit 0; }
paths=(protos docker pyproject.toml setup.py MANIFEST.in requirements-torch.txt
       editfleet_common editor_service scorer_service orchestrator suites)
if [[ -n $(git status --porcelain --untracked-files=all -- "${paths[@]}") ]]; then
    echo "$head-dirty"
else
    echo "$head"
fi
