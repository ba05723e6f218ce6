#!/usr/bin/env bash
# Make the base image Parley's image builds on, with no registry: a minimal Debian bookworm
# (python3 3.11, venv, CA certificates) from debootstrap, imported with `podman import`.
# Idempotent: does nothing when the image exists (FORCE=1 rebuilds it).
#
#   tools/image/base.sh            # -> localhost/parley-base:bookworm
set -euo pipefail
BASE="${BASE_IMAGE:-localhost/parley-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$(cd "$(dirname "$0")" && pwd)/containers.conf}"

if [ -z "${FORCE:-}" ] && podman image exists "$BASE"; then
  echo "base: $BASE exists"; exit 0
fi
for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "base: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
root="$(mktemp -d /var/tmp/parley-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "base: debootstrap bookworm into $root"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$root" "$MIRROR" >/dev/null
# what an image needs no copy of: package lists and caches, docs, man pages, locales
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*
find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'en*' -exec rm -rf {} + 2>/dev/null || true
tar -C "$root" --numeric-owner -c . | podman import \
  --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$BASE" >/dev/null
echo "base: $BASE made"
