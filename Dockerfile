# Image of the Liara crisis worker (and of the `liara` command line); docker-compose.yml builds it
# for the temporal-worker service. Only the installed package is needed at run time.
FROM python:3.11.17-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LIARA_CRISIS_DIR=/data/crises

# A system user with a fixed numeric id (so orchestrators can check it is not root).
RUN groupadd --system --gid 10001 liara \
 && useradd --system --uid 10001 --gid liara --home-dir /app --no-create-home --shell /usr/sbin/nologin liara

# The project as a regular (non-editable) install: packages app, app.temporal, cognition,
# cognition.liara and the `liara` console script; the sources are removed afterwards.
WORKDIR /tmp/liara
COPY pyproject.toml README.md ./
COPY src ./src
COPY cognition ./cognition
RUN pip install --no-cache-dir . && rm -rf /tmp/liara

# /data/crises holds the crisis records, which are not encrypted: owner-only (0700), as the
# record store creates it (docker-compose mounts the shared volume there; a new named volume
# takes this directory's owner and mode). /app is the working directory, where a worker looks
# for liara.toml (or set LIARA_CONFIG).
RUN mkdir -p /data/crises /app && chown liara:liara /data/crises /app && chmod 700 /data/crises
WORKDIR /app
USER 10001:10001

# The dedicated Liara worker; SIGTERM stops it gracefully (--graceful-shutdown, default 10 s).
CMD ["liara", "worker"]
