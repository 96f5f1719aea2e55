# syntax=docker/dockerfile:1
# The sovd-hub image: `docker run sovd-hub` serves (HTTP 8080, gRPC 50051, on every
# interface); `docker run sovd-hub migrate` migrates; any other `sovd-hub` subcommand works too.
# Configure with the environment: SOVD_HUB_DATABASE_URL, SOVD_HUB_REDIS_URL,
# SOVD_HUB_JWT_SECRET, SOVD_HUB_NODE_ID (see docker-compose.yml and deploy/kubernetes/).
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a virtual environment with the runtime dependencies at the lock's versions ---
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# requirements.lock freezes the runtime AND the dev tools (pytest, mypy, ruff, matplotlib...).
# The image gets only what the project needs at runtime: pyproject.toml's
# [project].dependencies, resolved with the lock as constraints, so every package installed
# is at exactly the lock's version and none of the dev tools is. This layer is rebuilt only
# when the lock or pyproject.toml changes.
COPY requirements.lock pyproject.toml /tmp/build/
RUN python -c "import tomllib; deps = tomllib.load(open('/tmp/build/pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" \
        > /tmp/build/runtime.txt \
    && pip install --constraint /tmp/build/requirements.lock --requirement /tmp/build/runtime.txt

# Then the project itself, without resolving anything again. The source is bind-mounted
# (read-write, changes discarded) so it stays out of every layer; `pip check` proves the
# environment is complete and consistent.
RUN --mount=type=bind,source=.,target=/tmp/src,rw \
    pip install --no-deps /tmp/src && pip check

# --- console: the web console's static files (console/), built with Node.js ---
FROM node:20-slim AS console
WORKDIR /console
COPY console/package.json console/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY console/ ./
RUN npm run build

# --- runtime: the virtual environment and the built console, run by an unprivileged user ---
FROM ${PYTHON_IMAGE} AS runtime

# Inside a container the hub listens on every interface, not on loopback.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    SOVD_HUB_HTTP_HOST=0.0.0.0 \
    SOVD_HUB_GRPC_HOST=0.0.0.0 \
    SOVD_HUB_CONSOLE_DIR=/opt/console

# /app is the user's home and working directory (where the embedded SQLite default would
# keep its data when no SOVD_HUB_DATABASE_URL is given).
RUN useradd --system --user-group --uid 10001 --home-dir /app --shell /usr/sbin/nologin sovd \
    && mkdir /app && chown sovd:sovd /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=console /console/dist /opt/console
WORKDIR /app
USER 10001:10001

# 8080: REST + WebSocket (operators); 50051: gRPC vehicle link.
EXPOSE 8080 50051

# Ready = the database, the vehicle gateway and Redis (when set) answer (GET /health/ready).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SOVD_HUB_HTTP_PORT', '8080') + '/health/ready', timeout=4)"]

# On SIGTERM the hub stops taking HTTP requests, ends vehicle streams with UNAVAILABLE
# within shutdown_grace_s (default 5 s) and exits 0: give it longer than that to stop
# (`docker stop --time`, compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["sovd-hub"]
CMD ["serve"]
