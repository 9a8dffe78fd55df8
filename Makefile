# media-lake: `make demo` runs the whole graph on the embedded default, `make test` runs the suite.
# Both install what they need first: system tools (ffmpeg, espeak-ng, sox) when missing, uv when
# missing, then the locked Python environment (`uv sync --frozen`); `make test` also Debian's
# chromium, the browser the UI tests drive through Playwright, and Debian's prometheus, whose
# promtool checks the shipped alert rules.
SHELL := /bin/bash
.DEFAULT_GOAL := demo

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MEDIA_LAKE_ROOT ?= $(CURDIR)/lake
export HF_HUB_OFFLINE ?= 1
export PYANNOTE_METRICS_ENABLED ?= 0
export OMP_WAIT_POLICY ?= PASSIVE

SYSTEM_TOOLS := ffmpeg ffprobe espeak-ng sox
APT_PACKAGES := ffmpeg espeak-ng sox python3-venv
BROWSER := chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/uv/bin/uv)

.PHONY: demo test dev bench install system-deps browser promtool image image-gpu image-check image-tools

demo: install
	$(UV) run --frozen media-lake demo

test: install browser promtool
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen pytest

dev: install
	$(UV) run --frozen python -m media_assets.instance
	$(UV) run --frozen dg dev

bench: install
	$(UV) run --frozen python benchmarks/normalize_audio.py

# Images, built with podman (no Docker engine needed). Where no image registry is reachable, the
# base is made from Debian's packages with debootstrap and imported as $(IMAGE_BASE); elsewhere
# `make image IMAGE_BASE=debian:bookworm-slim` pulls the official one. The host's CA bundle goes in
# as a build secret, for builds behind a TLS-intercepting proxy.
IMAGE ?= media-lake:latest
IMAGE_GPU ?= media-lake-gpu:latest
IMAGE_BASE ?= localhost/debian:bookworm-slim
PODMAN_BUILD := podman build --format docker --isolation=chroot --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt

image: image-tools
	@podman image exists $(IMAGE_BASE) || ! [[ $(IMAGE_BASE) == localhost/* ]] || $(SUDO) bash k8s/debian-base.sh $(IMAGE_BASE)
	$(PODMAN_BUILD) --build-arg BASE=$(IMAGE_BASE) -t $(IMAGE) -f Dockerfile .
	podman image prune -f --filter label=org.opencontainers.image.title=media-lake  # earlier builds, 10 GB each

image-gpu: image
	$(PODMAN_BUILD) --build-arg BASE=$(IMAGE) -t $(IMAGE_GPU) -f Dockerfile.gpu .

# `media-lake demo` inside the built image, offline (podman cannot start containers on every kernel:
# this mounts the image's file system and runs it with chroot).
image-check: image
	$(SUDO) bash k8s/image-check.sh $(IMAGE)

image-tools:
	@command -v podman >/dev/null && command -v debootstrap >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq podman buildah debootstrap fuse-overlayfs uidmap; }

install: system-deps $(UV)
	$(UV) sync --frozen

system-deps:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages (missing:$$missing)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

browser:
	@command -v $(BROWSER) >/dev/null || { echo "installing $(BROWSER) (for the UI tests)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(BROWSER); }

promtool:
	@command -v promtool >/dev/null || { echo "installing prometheus (promtool, for the alert rule tests)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }

$(CURDIR)/.tools/uv/bin/uv:
	python3 -m venv $(CURDIR)/.tools/uv || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv && python3 -m venv $(CURDIR)/.tools/uv; }
	$(CURDIR)/.tools/uv/bin/pip install -q uv
