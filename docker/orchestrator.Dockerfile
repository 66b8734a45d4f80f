# The orchestrator CLI (no torch): shards a benchmark over the editors, then has the judge score.
# In Kubernetes it runs as a Job that scales the editor/scorer StatefulSets itself.
# BASE_IMAGE: any Python 3.11 image (it needs no GPU); see editor.Dockerfile for the wheel options.
# What runs is the project's wheel (dist/) with its [orchestrator] extra: the services' code comes with
# it (one distribution) but none of their dependencies, so nothing of a service but its client imports.
ARG BASE_IMAGE=localhost/editfleet-base:bookworm-py311
FROM ${BASE_IMAGE}
ARG PIP_INSTALL_FLAGS=--no-index

RUN useradd --uid 10001 --user-group --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
 && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN --mount=type=bind,source=dist,target=/dist \
    --mount=type=bind,source=.cache/wheelhouse,target=/wheels \
    pip install -q --find-links /wheels $PIP_INSTALL_FLAGS "$(ls /dist/editfleet-*.whl)[orchestrator]" \
 && python -c "import grpc, kubernetes, click, orchestrator.cli, editor_service.client, scorer_service.client" \
 && ! python -c "import torch" 2>/dev/null \
 && orchestrator --version

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/app
WORKDIR /home/app
USER 10001:10001
ENTRYPOINT ["/opt/venv/bin/orchestrator"]
CMD ["--help"]
