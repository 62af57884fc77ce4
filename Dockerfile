# Digit service image: the locked serving dependencies, the project and the committed model.
#   docker build -t mnist-digit-service:1.0.0 .         (the `runtime` stage, the default)
#   docker build --target train -t mnist-digit-service-train:1.0.0 .
# With Podman or Buildah add `--format docker`: their default (OCI) image format has no
# HEALTHCHECK and drops it. scripts/container-check builds and runs this file unmodified.
# No `# syntax=` line: any builder's built-in Dockerfile frontend reads it, none is pulled.
# Stages: `builder` installs the serving lockfile into /opt/venv before copying the source, so
# the dependency layer is rebuilt only when requirements/serve.txt changes, then builds the
# project wheel; `train` adds TensorFlow for `python -m training`; `runtime` is slim and non-root.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The build backend lives in its own environment, which is not shipped.
COPY requirements/build.txt requirements/build.txt
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes -r requirements/build.txt
COPY requirements/serve.txt requirements/serve.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements/serve.txt
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps /wheels/*.whl

FROM ${PYTHON_IMAGE} AS train
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /srv
COPY requirements/train.txt /tmp/requirements/train.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements/train.txt \
    && rm -rf /tmp/requirements
COPY --from=builder /wheels /wheels
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps /wheels/*.whl && rm -rf /wheels
# Keras, TensorFlow and Matplotlib write caches under HOME; /tmp works for any user id, which
# matters because compose runs this stage as the host user so that models/ stays theirs.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
CMD ["python", "-m", "training", "--data", "/data/mnist", "--output-dir", "/models"]

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mnist-digit-service" \
      org.opencontainers.image.description="Handwritten-digit recognition API (Keras dense MNIST model)" \
      org.opencontainers.image.licenses="MIT"
# A system account with a fixed id above the system range (Kubernetes' runAsUser names it), so
# that it never matches a user of the host; -K lets useradd take it without a warning.
RUN groupadd --system --gid 10001 -K SYS_GID_MAX=10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app -K SYS_UID_MAX=10001 \
        --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=1 \
    MODEL_DIR=/srv/models
WORKDIR /srv
# Owned by root and world-readable (files 644, folders 755), like any installed software: the
# app user reads its code and model and cannot change them. They hold nothing secret.
COPY --from=builder /opt/venv /opt/venv
COPY models ./models
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/readyz', timeout=4)"]
CMD ["mnist-serve"]
