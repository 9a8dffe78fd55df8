# The media-lake code location: Dagster user code with ffmpeg and the locked environment.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg espeak-ng sox make \
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv

WORKDIR /opt/media-lake
ENV UV_PROJECT_ENVIRONMENT=/opt/media-lake/.venv \
    PATH=/opt/media-lake/.venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    PYANNOTE_METRICS_ENABLED=0 \
    OMP_WAIT_POLICY=PASSIVE \
    DAGSTER_HOME=/opt/dagster/home

COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY media_assets ./media_assets
COPY schemas ./schemas
COPY workspace.yaml setup.cfg ./
RUN uv sync --frozen --no-dev && mkdir -p "$DAGSTER_HOME"

EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "media_assets.definitions"]
