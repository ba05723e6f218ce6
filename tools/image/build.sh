#!/usr/bin/env bash
# `make image`: build Parley's image with podman, offline.
#   1. the base image (tools/image/base.sh: debootstrap bookworm, `podman import`) when missing;
#   2. wheels of Parley and all its dependencies, built on the host into build/wheels by
#      Debian's own python3 (the very interpreter the base has, 3.11.2: dependency markers
#      such as `python_full_version < "3.11.3"` must be decided for it, not for the venv's);
#   3. podman build of the Containerfile on that base, tagged $IMAGE (localhost/parley:dev).
# Prints the image size at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE="${IMAGE:-localhost/parley:dev}"
BASE_IMAGE="${BASE_IMAGE:-localhost/parley-base:bookworm}"
WHEEL_PYTHON="${WHEEL_PYTHON:-/usr/bin/python3}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/tools/image/containers.conf}"

command -v podman >/dev/null || { echo "image: podman is missing (apt-get install podman runc debootstrap)" >&2; exit 1; }
BASE_IMAGE="$BASE_IMAGE" tools/image/base.sh
want="$(podman run --rm --runtime runc --network none "$BASE_IMAGE" python3 -c 'import platform; print(platform.python_version())')"
have="$("$WHEEL_PYTHON" -c 'import platform; print(platform.python_version())')"
[ "$want" = "$have" ] || { echo "image: $WHEEL_PYTHON is Python $have, the base has $want (apt-get install python3 python3-venv, or set WHEEL_PYTHON)" >&2; exit 1; }
[ -x build/wheel-venv/bin/pip ] || "$WHEEL_PYTHON" -m venv build/wheel-venv
rm -rf build/wheels
build/wheel-venv/bin/pip wheel --quiet --disable-pip-version-check --wheel-dir build/wheels . 2>build/wheels.log \
  || { cat build/wheels.log >&2; exit 1; }
podman build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$IMAGE" -f Containerfile . >/dev/null
size="$(podman image inspect "$IMAGE" --format '{{.Size}}')"
echo "image: $IMAGE built, $((size / 1024 / 1024)) MiB"
