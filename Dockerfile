# namegen service: CPU torch, the shipped checkpoint baked in, non-root.
#   docker build -t namegen . && docker run --rm -p 127.0.0.1:8000:8000 namegen
# Settings come from NAMEGEN_* environment variables (see README); docs/container.md has
# the podman build used in CI, with a local base image and a local torch wheel.

# Any image with python 3.11 and `python` on PATH (scripts/make_base_image.sh makes one).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# PyPI's Linux torch wheel is a CUDA build of several GB; the CPU wheel is a fraction. A
# torch-2.13.0+cpu wheel in wheels/ wins over the index, for builders that cannot reach it.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv

# A package index behind its own certificate authority: pass its bundle as the secret
# "cacert" (`--secret id=cacert,src=...`); it is mounted for these steps only, never kept.
SHELL ["/bin/sh", "-eu", "-c"]
RUN --mount=type=bind,source=wheels,target=/wheels \
    --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    set -- /wheels/torch-2.13.0+cpu-*.whl; \
    if [ -f "$1" ]; then pip install --find-links=/wheels torch==2.13.0+cpu; \
    else pip install --index-url="$TORCH_INDEX" torch==2.13.0+cpu; fi

COPY pyproject.toml README.md ./
COPY model ./model
COPY training ./training
COPY app ./app
# Then out go pip and torch's C++ tests, test programs and headers (about 190 MB): they
# serve building extensions and torch.compile's C++ backend, which the service never uses.
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    pip install . && pip uninstall --yes pip; \
    torch=$(echo /opt/venv/lib/python3.*/site-packages/torch); \
    rm -rf "$torch/test" "$torch/include"; \
    find "$torch/bin" -type f ! -name torch_shm_manager -delete

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    NAMEGEN_CHECKPOINT=/srv/namegen/checkpoints/default \
    NAMEGEN_DEVICE=cpu
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent namegen
# Only the venv crosses over: no pip cache, no build tools, no sources.
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/namegen
COPY checkpoints/default ./checkpoints/default
USER 10001

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2)"]
# Exec form: python is PID 1 and gets SIGTERM itself; uvicorn then shuts down gracefully.
# The container listens on all its interfaces so a published port reaches it.
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]
