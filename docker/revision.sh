#!/usr/bin/env bash
# The revision the images are labelled with (org.opencontainers.image.revision): the short HEAD,
# with "-dirty" when what the build copies differs from HEAD: a modified, staged, deleted or
# untracked (not ignored) file under a path the build context lets in (.dockerignore's "!" lines),
# under protos/ (gen/ is generated from it) or under docker/ (the Dockerfiles). Ignored build
# products (gen/, .cache/wheelhouse/) are made from those by `make images`.
set -euo pipefail
cd "$(dirname "$0")/.."
head=$(git rev-parse --short HEAD 2>/dev/null) || { echo unknown; exit 0; }
paths=(protos docker)
while read -r line; do
    [[ $line == '!'* ]] && paths+=("${line#!}")
done < .dockerignore
if [[ -n $(git status --porcelain --untracked-files=all -- "${paths[@]}") ]]; then
    echo "$head-dirty"
else
    echo "$head"
fi
