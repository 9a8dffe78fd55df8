#!/usr/bin/env bash
# Runs `media-lake demo` inside a built image, offline, and checks what it wrote. Containers
# cannot be started on every kernel (podman run needs cgroup support some VMs lack), so this runs
# the image's own file system with chroot: a writable container layer (podman create + mount),
# the image's user and environment, /out as the working directory, and no network at all
# (unshare --net). Needs root.
set -euo pipefail
image=${1:-media-lake:latest}
out=$(mktemp -d)
container="" root=""
cleanup() {
  set +e
  if [ -n "$root" ]; then umount -R "$root/out" "$root/dev" "$root/proc" 2>/dev/null; fi
  if [ -n "$container" ]; then podman umount "$container" >/dev/null; podman rm "$container" >/dev/null; fi
  rm -rf "$out"
}
trap cleanup EXIT
container=$(podman create --no-healthcheck "$image")
root=$(podman mount "$container")
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"  # unmounting it never reaches the host's /dev
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
# Every sample episode registered; the three spoken ones (interview, monologue, three topics)
# transcribed, diarized and chaptered; the corrupt upload the only dead letter.
check() {
  local got
  got=$(in_image media-lake sql "$2" --format csv | tail -1 | tr -d '[:space:]')
  echo "$1: $got"
  [ "$got" = "$3" ] || { echo "image check failed: $1 is $got, expected $3" >&2; exit 1; }
}
check "episodes" "SELECT count(*) FROM episodes" 5
check "episodes with words" "SELECT count(DISTINCT episode_id) FROM transcript_words" 3
check "episodes with speaker turns" "SELECT count(DISTINCT episode_id) FROM speaker_turns" 3
check "episodes with spoken chapters" "SELECT count(DISTINCT episode_id) FROM chapters WHERE sentence_count > 0" 3
check "open dead letters" "SELECT string_agg(stage, ',') FROM dead_letters WHERE resolved_at IS NULL" ingest
echo "image check passed: $image"
