# Every check has one entry here; CI calls the same targets (see .ci/run).
SHELL := /bin/bash
UV_VERSION := 0.13.8
# checkov has many pinned dependencies: it lives in its own environment under .tools, not in uv.lock
CHECKOV_VERSION := 3.3.30
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
PYTEST_ARGS ?=
# Installed packages and our sources compiled ahead (setup): every process (the API, the CLI, test
# servers, Dagster's) imports compiled modules instead of compiling them at each start, which it
# does where PYTHONDONTWRITEBYTECODE is set (Python then never caches what it compiles). The
# first sync compiles for about a minute; later ones only what changed.
export UV_COMPILE_BYTECODE := 1
# pytest-xdist workers for `make unit`: two keep both cores of the reference machine busy while
# tests wait on servers and daemons; PYTEST_WORKERS=0 runs the suite in one process.
PYTEST_WORKERS ?= 2

.PHONY: help setup tools diagram screenshots demo test lint typecheck unit bench bench-ingest bench-serving bench-shadow bench-monitoring bench-orchestration bench-release bench-dashboard clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(TOOLS)/bin/uv:
	@echo "uv not found: installing uv $(UV_VERSION) into $(TOOLS)/ from PyPI"
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

setup: $(if $(filter $(TOOLS)/bin/uv,$(UV)),$(TOOLS)/bin/uv) ## Create .venv from uv.lock
	$(UV) sync --frozen
	@$(UV) run --frozen python -m compileall -q src bench > /dev/null

demo: setup ## Run the whole lifecycle on embedded defaults (small fleet)
	$(UV) run --frozen modelcycle demo

lint: setup ## ruff lint and format check
	$(UV) run --frozen ruff check src tests bench
	$(UV) run --frozen ruff format --check src tests bench

typecheck: setup ## mypy --strict
	$(UV) run --frozen mypy

tools: $(if $(filter $(TOOLS)/bin/uv,$(UV)),$(TOOLS)/bin/uv) ## Tools the tests use: promtool, dot (Graphviz), chromium, checkov (in .tools), kubectl and terraform (checked)
	@command -v promtool >/dev/null || (echo "installing promtool (Debian package prometheus)"; apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus)
	@command -v dot >/dev/null || (echo "installing dot (Debian package graphviz)"; apt-get update -qq && apt-get install -y -qq --no-install-recommends graphviz)
	@test -x /usr/bin/chromium || (echo "installing chromium (Debian package), driven by Playwright in tests/dashboard"; apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)
	@test -x $(TOOLS)/bin/checkov || (echo "installing checkov $(CHECKOV_VERSION) into $(TOOLS)/ (its own environment)"; UV_TOOL_DIR=$(CURDIR)/$(TOOLS)/uv-tools UV_TOOL_BIN_DIR=$(CURDIR)/$(TOOLS)/bin $(UV) tool install --quiet checkov==$(CHECKOV_VERSION))
	@command -v kubectl >/dev/null || (echo "kubectl is missing: tests/deploy build the Kustomize overlays with it"; exit 1)
	@command -v terraform >/dev/null || (echo "terraform is missing: tests/deploy check deploy/terraform with it"; exit 1)

diagram: setup tools ## Render docs/architecture.png from docs/diagrams/architecture.py
	$(UV) run --frozen python docs/diagrams/architecture.py docs/architecture.png

screenshots: setup tools ## Refresh docs/screenshots/ from the dashboard's browser tests
	$(UV) run --frozen pytest -p no:randomly tests/dashboard --dashboard-screenshots docs/screenshots

unit: setup tools ## The test suite (slow end-to-end tests included)
	$(UV) run --frozen pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test: lint typecheck unit ## Everything CI checks

bench: setup ## All benchmarks, each judged against its targets; exits non-zero if one failed
	@failed=""; for b in ingest serving shadow monitoring orchestration release dashboard; do \
		$(MAKE) --no-print-directory bench-$$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "benchmarks with a failed target:$$failed (see docs/benchmarks.md)"; exit 1; fi

bench-ingest: setup ## Ingest, features and training at reference scale vs pandas and bare polars
	$(UV) run --frozen python -m bench.ingest

bench-serving: setup ## The API under wrk vs `mlflow models serve` and a bare ONNX handler
	@command -v wrk >/dev/null || (echo "installing wrk (Debian package)"; apt-get update -qq && apt-get install -y -qq wrk)
	$(UV) run --frozen python -m bench.serving $(BENCH_ARGS)

bench-shadow: setup ## Shadow scoring off vs on: the champion's p99 under the serving load, 5 interleaved pairs
	@command -v wrk >/dev/null || (echo "installing wrk (Debian package)"; apt-get update -qq && apt-get install -y -qq wrk)
	$(UV) run --frozen python -m bench.serving --shadow --rounds 5 $(BENCH_ARGS)

bench-monitoring: setup ## Score, evaluate and check alerts on a reference-scale day vs MLflow pyfunc
	$(UV) run --frozen python -m bench.monitoring $(BENCH_ARGS)

bench-orchestration: setup ## The daily Dagster job on a reference-scale day vs the same steps from the CLI
	$(UV) run --frozen python -m bench.orchestration $(BENCH_ARGS)

bench-release: setup ## Approval → the API serving the new version: registry webhook vs poll only
	$(UV) run --frozen python -m bench.release $(BENCH_ARGS)

bench-dashboard: setup ## Every dashboard page and its /v1/ twin: 1000 devices, 90 days (synthetic history)
	$(UV) run --frozen python -m bench.dashboard $(BENCH_ARGS)

clean: ## Remove the demo's state and caches
	rm -rf .modelcycle .pytest_cache .mypy_cache .ruff_cache
