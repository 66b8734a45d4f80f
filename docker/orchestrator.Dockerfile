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
# The services' torch-free client libraries, and nothing else of the services: the clients, the score
# statuses, and the judge protocols (the orchestrator reads a protocol's reply budget).
COPY editor_service/__init__.py editor_service/client.py /app/editor_service/
COPY scorer_service/__init__.py scorer_service/client.py scorer_service/statuses.py scorer_service/protocol.py scorer_service/combine.py scorer_service/parsing.py /app/scorer_service/
COPY scorer_service/protocols /app/scorer_service/protocols

ENV PYTHONPATH=/app:/app/gen \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/app
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["/opt/venv/bin/python", "-m", "orchestrator"]
CMD ["--help"]
