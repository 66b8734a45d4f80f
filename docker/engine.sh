# Sourced by the docker/ scripts: pick the container engine and the flags it needs here.
#   CONTAINER_ENGINE=docker|podman   force one (default: docker if its daemon answers, else podman)
#   PODMAN_RUNTIME=runc|crun         OCI runtime for podman (default: runc where installed)
if [[ -z ${CONTAINER_ENGINE:-} ]]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        CONTAINER_ENGINE=docker
    elif command -v podman >/dev/null 2>&1; then
        CONTAINER_ENGINE=podman
    else
        echo "needs podman, or docker with a running daemon (Debian: apt-get install podman)" >&2
        exit 1
    fi
fi
ENGINE_FLAGS=()
if [[ $(basename "$CONTAINER_ENGINE") == podman ]]; then
    runtime=${PODMAN_RUNTIME:-$(command -v runc >/dev/null 2>&1 && echo runc || true)}
    [[ -n $runtime ]] && ENGINE_FLAGS+=(--runtime "$runtime")
    # podman's default nofile/nproc limits can exceed what a sandboxed host allows.
    ENGINE_FLAGS+=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
fi
LOCAL_BASE_IMAGE=localhost/editfleet-base:bookworm-py311
BASE_IMAGE=${BASE_IMAGE:-$LOCAL_BASE_IMAGE}
ORCH_BASE_IMAGE=${ORCH_BASE_IMAGE:-$LOCAL_BASE_IMAGE}
IMAGE_PREFIX=${IMAGE_PREFIX:-localhost/editfleet-}
IMAGE_TAG=${IMAGE_TAG:-dev}
