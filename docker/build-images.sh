#!/usr/bin/env bash
# Build the editor, scorer and orchestrator images (`make images`; run from the repo root), each from the
# project's wheel (dist/, `make wheel`) with its own extra; dependencies from .cache/wheelhouse.
#   BASE_IMAGE        base of editor + scorer: a CUDA PyTorch image for GPUs, e.g.
#                     pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime (its torch is kept), or the
#                     local Debian base (default; made by make-base.sh when missing, torch from
#                     requirements-torch.txt)
#   ORCH_BASE_IMAGE   base of the orchestrator (no torch; default: the local Debian base)
#   PIP_INSTALL_FLAGS "--no-index" (default: wheels only from .cache/wheelhouse), "" to allow the index
#   IMAGE_PREFIX, IMAGE_TAG   names: ${IMAGE_PREFIX}editor:${IMAGE_TAG} (default localhost/editfleet-editor:dev)
#   SERVICES          which to build (default: "editor scorer orchestrator")
set -euo pipefail
cd "$(dirname "$0")/.."
source docker/engine.sh

# The images install the project's wheel (exactly one, in dist/) and its dependencies' wheels.
wheels=(dist/editfleet-*.whl)
[[ ${#wheels[@]} == 1 && -f ${wheels[0]} ]] || { echo "need exactly one dist/editfleet-*.whl: run 'make wheel' first" >&2; exit 1; }
[[ -d .cache/wheelhouse ]] || { echo ".cache/wheelhouse is missing: run 'make wheelhouse' first" >&2; exit 1; }
for base in "$BASE_IMAGE" "$ORCH_BASE_IMAGE"; do
    if [[ $base == "$LOCAL_BASE_IMAGE" ]] && ! "$CONTAINER_ENGINE" image exists "$base" 2>/dev/null \
            && ! "$CONTAINER_ENGINE" image inspect "$base" >/dev/null 2>&1; then
        echo "== base image $base (debootstrap)"
        CONTAINER_ENGINE=$CONTAINER_ENGINE docker/make-base.sh "$base"
    fi
done

# HEAD, or HEAD-dirty when the copied tree has changes HEAD does not describe (docker/revision.sh)
revision=$(docker/revision.sh)
if [[ $revision == *-dirty ]]; then
    echo "note: uncommitted changes in the build context; images labelled $revision" >&2
fi
for service in ${SERVICES:-editor scorer orchestrator}; do
    base=$BASE_IMAGE
    [[ $service == orchestrator ]] && base=$ORCH_BASE_IMAGE
    image="${IMAGE_PREFIX}${service}:${IMAGE_TAG}"
    echo "== $image (base $base, $CONTAINER_ENGINE, revision $revision)"
    start=$SECONDS
    "$CONTAINER_ENGINE" build "${ENGINE_FLAGS[@]}" \
        -f "docker/$service.Dockerfile" \
        --build-arg "BASE_IMAGE=$base" \
        --build-arg "PIP_INSTALL_FLAGS=${PIP_INSTALL_FLAGS---no-index}" \
        --label "org.opencontainers.image.revision=$revision" \
        --label "org.opencontainers.image.title=editfleet-$service" \
        -t "$image" .
    echo "== $image built in $((SECONDS - start))s"
done
"$CONTAINER_ENGINE" images --filter "reference=${IMAGE_PREFIX}*" --format '{{.Repository}}:{{.Tag}}  {{.Size}}'
