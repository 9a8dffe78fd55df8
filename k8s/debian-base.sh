#!/usr/bin/env bash
# A Debian 12 (bookworm) base image made from Debian's packages, for building where no image
# registry is reachable: debootstrap's minimal variant, with this host's apt sources (a Debian 12
# host: its mirror, updates and security lines), imported into podman as $1.
set -euo pipefail
name=${1:-localhost/debian:bookworm-slim}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mirror=$(grep -hoE '^(URIs:|deb) +[a-z]+://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -v security | head -1 | awk '{print $2}') || true  # either file may be missing
[ -n "$mirror" ] || { echo "no Debian mirror found in this host's apt sources" >&2; exit 1; }
debootstrap --variant=minbase bookworm "$root" "$mirror"
cp /etc/apt/sources.list "$root/etc/apt/" 2>/dev/null || true
cp /etc/apt/sources.list.d/* "$root/etc/apt/sources.list.d/" 2>/dev/null || true
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*
tar --numeric-owner -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$name"
