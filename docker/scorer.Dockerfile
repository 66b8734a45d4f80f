# The scorer service: the VLM judge (Qwen3-VL and kin), dynamically batched.
#
# BASE_IMAGE picks the base:
#   GPU:  a CUDA PyTorch image (torch already installed; requirements-torch.txt is skipped),
#         e.g. pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime
#   CPU:  any plain Python 3.11 image, e.g. the Debian base `make base-image` builds without a
#         registry; torch then comes from requirements-torch.txt.
# What runs is the project's wheel (dist/, made by `make wheel`) installed with its [scorer] extra: no
# source tree is copied. Its dependencies come from the build context's .cache/wheelhouse (made on the
# host by `make wheelhouse` from the wheel's own metadata); PIP_INSTALL_FLAGS="--no-index" keeps the
# build off the network, "" lets pip use its index too.
#
# The lines up to the torch install are identical in editor.Dockerfile on purpose: both images then
# share the (multi-GB) torch layer instead of storing it twice.
ARG BASE_IMAGE=localhost/editfleet-base:bookworm-py311
FROM ${BASE_IMAGE}
ARG PIP_INSTALL_FLAGS=--no-index

RUN useradd --uid 10001 --user-group --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
 && python3 -m venv --system-site-packages /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY requirements-torch.txt /tmp/req/requirements-torch.txt
RUN --mount=type=bind,source=.cache/wheelhouse,target=/wheels \
    if python -c "import torch" 2>/dev/null; then \
        echo "torch $(python -c 'import torch; print(torch.__version__)') comes from the base image"; \
    else \
        pip install -q --find-links /wheels $PIP_INSTALL_FLAGS -r /tmp/req/requirements-torch.txt; \
    fi

# torch is held to what the previous layer installed (the base image's or requirements-torch.txt's).
RUN --mount=type=bind,source=dist,target=/dist \
    --mount=type=bind,source=.cache/wheelhouse,target=/wheels \
    python -c "import torch; print(f'torch=={torch.__version__}')" > /tmp/torch-held.txt \
 && pip install -q --find-links /wheels $PIP_INSTALL_FLAGS -c /tmp/torch-held.txt "$(ls /dist/editfleet-*.whl)[scorer]" \
 && python -c "import torch, torchvision, transformers, grpc, scorer_service.judge" \
 && editfleet-scorer --version

# HF_HUB_OFFLINE: weights come from a mounted volume, never from a hub at run time.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    HF_HOME=/tmp/hf \
    HOME=/home/app
WORKDIR /home/app
USER 10001:10001
EXPOSE 50052
# Exec form: the console command is a Python script (#!/opt/venv/bin/python), so python is PID 1 and
# installs its own SIGTERM handler (graceful drain), no shell between.
ENTRYPOINT ["/opt/venv/bin/editfleet-scorer"]
CMD ["--help"]
