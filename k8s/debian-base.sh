#!/usr/bin/env bash
# A Debian 12 (bookworm) base image made from Debian's packages, for building where no image
# registry is reachable: debootstrap's minimal variant from this host's Debian mirror, with that
# mirror's bookworm, bookworm-updates and (where the host has one) security sources, imported
# into podman as $1. Needs root.
set -euo pipefail
name=${1:-localhost/debian:bookworm-slim}
root=$(mktemp -d)
trap 'rm -rf --one-file-system "$root"' EXIT
uris() {  # the host's Debian archive URIs, one-line or deb822 sources
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE '^(URIs:|deb) +[a-z]+://[^ ]+' | awk '{print $2}' || true
}
mirror=$(uris | grep -v security | head -1) || true
security=$(uris | grep security | head -1) || true
[ -n "$mirror" ] || { echo "no Debian mirror found in this host's apt sources" >&2; exit 1; }
debootstrap --variant=minbase bookworm "$root" "$mirror"
{
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\n' "$mirror"
  [ -z "$security" ] || printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\n' "$security"
} > "$root/etc/apt/sources.list.d/debian.sources"
rm -f "$root/etc/apt/sources.list"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*
tar --numeric-owner -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$name"
