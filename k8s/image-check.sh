#!/usr/bin/env bash
# Runs `media-lake demo` inside a built image, offline, and checks what it wrote. Containers
# cannot be started on every kernel (podman run needs cgroup support some VMs lack), so this runs
# the image's own file system with chroot: a writable container layer (podman create + mount),
# the image's user and environment, /out as the working directory, and no network at all (unshare --net).
set -euo pipefail
image=${1:-media-lake:latest}
out=$(mktemp -d)
container=$(podman create --no-healthcheck "$image")
root=$(podman mount "$container")
cleanup() {
  umount -R "$root/out" "$root/dev" "$root/proc" 2>/dev/null || true
  podman umount "$container" >/dev/null; podman rm "$container" >/dev/null; rm -rf "$out"
}
trap cleanup EXIT
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mkdir -p "$root/out" && chown 10001:10001 "$out" && mount --bind "$out" "$root/out"
inspect() { podman image inspect "$image" --format "$1"; }
user=$(inspect '{{.Config.User}}')
mapfile -t env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
in_image() {
  unshare --net chroot --userspec="$user" "$root" \
    env -i "${env[@]}" MEDIA_LAKE_ROOT=/out/lake DAGSTER_HOME=/out/dagster sh -c 'cd /out && exec "$@"' sh "$@"
}
started=$(date +%s)
in_image media-lake demo | tee "$out/demo.txt"
echo "demo in the image: $(( $(date +%s) - started )) s"
in_image media-lake sql "SELECT count(*) AS episodes FROM episodes" --format csv | tee "$out/episodes.csv"
in_image media-lake sql "SELECT count(*) AS chapters FROM chapters" --format csv | tee "$out/chapters.csv"
[ "$(tail -1 "$out/episodes.csv")" -ge 3 ] || { echo "image check: expected at least 3 episodes" >&2; exit 1; }
[ "$(tail -1 "$out/chapters.csv")" -ge 3 ] || { echo "image check: expected chapters" >&2; exit 1; }
echo "image check passed: $image"
