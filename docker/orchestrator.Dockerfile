# The orchestrator CLI (no torch): shards a benchmark over the editors, then has the judge score.
# In Kubernetes it runs as a Job that scales the editor/scorer StatefulSets itself.
# BASE_IMAGE: any Python 3.11 image (it needs no GPU); see editor.Dockerfile for the wheel options.
ARG BASE_IMAGE=localhost/editfleet-base:bookworm-py311
FROM ${BASE_IMAGE}
ARG PIP_INSTALL_FLAGS=--no-index

RUN useradd --uid 10001 --user-group --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
 && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY orchestrator/requirements.txt /tmp/req/orchestrator.txt
RUN --mount=type=bind,source=.cache/wheelhouse,target=/wheels \
    pip install -q --find-links /wheels $PIP_INSTALL_FLAGS -r /tmp/req/orchestrator.txt \
 && python -c "import grpc, kubernetes, click" \
 && ! python -c "import torch" 2>/dev/null

COPY editfleet_common /app/editfleet_common
COPY gen /app/gen
COPY orchestrator /app/orchestrator
COPY suites /app/suites
# The services' torch-free clients, the only part of a service the orchestrator imports
# (tests/orchestrator/test_boundaries.py holds it to that).
COPY editor_service/__init__.py editor_service/client.py /app/editor_service/
COPY scorer_service/__init__.py scorer_service/client.py /app/scorer_service/

ENV PYTHONPATH=/app:/app/gen \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/app
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["/opt/venv/bin/python", "-m", "orchestrator"]
CMD ["--help"]
