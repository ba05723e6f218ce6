# Parley: `make run` starts the whole stack, `make test` runs every test.
# The virtualenv lives in .venv/ and is (re)built when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8080
PYTEST_ARGS ?=

.PHONY: setup run test test-unit test-integration test-e2e axe test-k8s lint typecheck bench chart \
        image cluster cluster-down k8s-binaries clean chaos

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py services/relay/_fastpath.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Parley needs Python >= 3.11")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: setup
	$(BIN)/parley dev --port $(PORT)

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/python -m pytest -q tests/unit

test-integration: setup
	$(BIN)/python -m pytest -q tests/integration

test-e2e: setup axe
	$(BIN)/python -m pytest -q tests/e2e

# axe-core for the accessibility checks of the e2e tests (from the npm registry, into build/).
axe: setup
	$(BIN)/python -c 'from tests.e2e.axe import ensure_axe; print(ensure_axe())'


lint: setup
	$(BIN)/ruff check services tests
	$(BIN)/mypy services operator/parley_operator

bench: setup
	$(BIN)/python -m bench.relay.run --rate 10000 --seconds 4
	$(BIN)/python -m bench.signaling
	$(BIN)/python -m bench.metrics.run --seconds 15 --replicas 2 --connections 64

chart: setup
	@HELM=$$(tools/helm.sh) && $$HELM lint charts/parley --strict && \
	for f in "" charts/parley/ci/*-values.yaml; do \
	  $$HELM template parley charts/parley --namespace parley --include-crds $${f:+--values $$f} >/dev/null || exit 1; \
	done
	$(BIN)/python -m pytest -q tests/chart

# The one image, built with podman from wheels made here on a base made here (no registry).
image: setup
	tools/image/build.sh

# A real control plane on loopback (etcd, kube-apiserver, controller-manager, scheduler,
# KWOK): binaries built from the Go module proxy into ~/.cache/parley/k8s when missing.
k8s-binaries:
	tools/k8s/build.sh

cluster: setup k8s-binaries
	$(BIN)/python -m tests.k8s.controlplane up

cluster-down: setup
	$(BIN)/python -m tests.k8s.controlplane down

# Only the tests against the real API server (the whole `make test` runs them too).
test-k8s: setup k8s-binaries
	$(BIN)/python -m pytest -q -m k8s tests/k8s tests/integration/operator

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build

# Issue 10's fault table: each fault in a real call on the dev stack, direct and
# relay-forced; prints the table and writes it into docs/resilience.md (a few minutes).
chaos: setup
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

# Load and soak of the whole dev stack (bench/README.md, "Load and soak"); long: not in `bench`.
.PHONY: chaos bench-load soak
bench-load: setup
	$(BIN)/python -m bench.load

soak: setup
	nice -n 10 $(BIN)/python -m bench.soak --minutes 15
