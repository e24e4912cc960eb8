# syntax=docker/dockerfile:1
# The face-match worker for ECS Fargate: `worker run` by default, `worker health` as the health check.
#   docker build -t face-match-worker .
#   docker run --rm -e BUCKET_NAME=… -e SNS_TOPIC_ARN=… -e QUEUE_URL=… face-match-worker
# deploy/check-dockerfile-install.sh performs the same install steps without Docker.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---- builder: a virtualenv with the worker and its runtime dependencies (wheels only) ----
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY worker ./worker
# The production image needs only the base package: no moto, no local face engine.
RUN /opt/venv/bin/pip install --no-cache-dir .

# ---- runtime: the virtualenv on a clean slim base, no compilers, not root ----
FROM ${PYTHON_IMAGE}

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 worker \
    && useradd --system --uid 10001 --gid worker --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin worker

COPY --from=builder /opt/venv /opt/venv

# No .env in the image: settings come from the task's environment. The root filesystem may be
# read-only; /tmp (heartbeat file, scratch) must then be a writable volume.
WORKDIR /app
USER 10001:10001

# Fails when the poll loop's heartbeat file is stale (the loop is stuck or gone).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["worker", "health"]

ENTRYPOINT ["worker"]
CMD ["run"]
