# namegen service: CPU torch, the shipped checkpoint baked in, non-root.
#   docker build -t namegen . && docker run --rm -p 8000:8000 namegen
# Settings come from NAMEGEN_* environment variables (see README).
FROM python:3.11-slim

# PyPI's Linux torch wheel is a CUDA build of several GB; the CPU wheel is a fraction.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/namegen

# The README's install steps: the pinned torch first, then the package.
RUN pip install --index-url "${TORCH_INDEX}" torch==2.13.0
COPY pyproject.toml README.md ./
COPY model ./model
COPY training ./training
COPY app ./app
RUN pip install .
COPY checkpoints/default ./checkpoints/default

RUN useradd --system --uid 10001 --no-create-home namegen
USER 10001

ENV NAMEGEN_CHECKPOINT=/srv/namegen/checkpoints/default \
    NAMEGEN_DEVICE=cpu
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2)"]
# The container listens on all its interfaces so a published port reaches it.
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]
