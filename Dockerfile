# syntax=docker/dockerfile:1
# The sovd-hub image: `docker run sovd-hub` serves; `docker run sovd-hub migrate` migrates.
# Configure with SOVD_HUB_DATABASE_URL, SOVD_HUB_REDIS_URL and SOVD_HUB_JWT_SECRET
# (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Pinned dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --requirement /tmp/requirements.lock && rm /tmp/requirements.lock

# Then the project itself, without re-resolving anything. The source is bind-mounted
# (read-write, changes discarded) so it does not stay in an image layer.
RUN --mount=type=bind,source=.,target=/tmp/src,rw \
    pip install --no-deps /tmp/src

# Run as an unprivileged user; /app is its working directory (and where the embedded
# SQLite default would keep its data when no SOVD_HUB_DATABASE_URL is given).
RUN useradd --system --user-group --uid 10001 --home-dir /app --shell /usr/sbin/nologin sovd \
    && mkdir /app && chown sovd:sovd /app
WORKDIR /app
USER sovd

# 8080: REST + WebSocket (operators); 50051: gRPC vehicle link.
EXPOSE 8080 50051

ENTRYPOINT ["sovd-hub"]
# Inside a container the hub must listen on every interface, not on loopback.
CMD ["serve", "--http-bind", "0.0.0.0:8080", "--grpc-bind", "0.0.0.0:50051"]
