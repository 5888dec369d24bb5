# guild-jupyter developer tasks. Everything a fresh machine needs is installed from here.
#
#   make install   venv + editable Python package + JS deps + dev labextension, linked
#   make lab       JupyterLab on examples/
#   make test      test-py (pytest), test-js (jest), test-ui (Galata, headless Chromium)
#   make demo      execute examples/quickstart.ipynb
#   make bench     run every bench/*.py
#   make clean     build outputs; `make distclean` also drops .venv and node_modules
#
# Installs are tracked by stamp files, so a second run does not redo them.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
JLPM := $(BIN)/jlpm
# Playwright cannot download its browsers here: the tests use the system Chromium.
CHROMIUM ?= /usr/bin/chromium

# The venv's jupyter, jlpm and jupyter-builder come first for every recipe, so the
# npm scripts and Playwright's web server find them too.
export PATH := $(BIN):$(PATH)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export CHROMIUM_PATH := $(CHROMIUM)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

PY_STAMP := $(VENV)/.installed-py
JS_STAMP := node_modules/.installed
UI_STAMP := ui-tests/node_modules/.installed
LABEXT := guild_jupyter/labextension/package.json
INSTALLED := $(VENV)/.installed
FRONTEND_SOURCES := $(shell find src style schema -type f -not -path '*/__tests__/*' 2>/dev/null) tsconfig.json

ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help venv install pyc lab test test-py test-js test-ui chromium demo bench clean distclean

help:
	@sed -n '2,10p' Makefile | sed 's/^# \{0,1\}//'

# ---------------------------------------------------------------- install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

venv: $(BIN)/python

# The labextension is built below with the venv's tools, not by the hatch hook.
$(PY_STAMP): pyproject.toml | $(BIN)/python
	HATCH_JUPYTER_BUILDER_SKIP_NPM=1 $(BIN)/python -m pip install -e ".[test,lab,dev]"
	touch $@

$(JS_STAMP): package.json $(wildcard yarn.lock) .yarnrc.yml $(PY_STAMP)
	$(JLPM) install
	touch $@

$(LABEXT): $(JS_STAMP) $(FRONTEND_SOURCES)
	$(JLPM) build
	touch $@

$(INSTALLED): $(LABEXT) $(PY_STAMP)
	$(BIN)/jupyter-builder develop . --overwrite
	$(BIN)/jupyter server extension enable guild_jupyter --sys-prefix
	touch $@

install: $(INSTALLED)

# Byte-compile the package: with PYTHONDONTWRITEBYTECODE set (as on CI machines) an editable
# install would otherwise recompile every module in every run's process.
pyc: $(PY_STAMP)
	$(BIN)/python -m compileall -q guild_jupyter >/dev/null

# ---------------------------------------------------------------- run

lab: install
	$(BIN)/jupyter lab $(ROOT_FLAG) examples/

demo: install pyc
	$(BIN)/python -m guild_jupyter.demo

bench: install pyc
	@shopt -s nullglob; found=0; \
	for f in bench/*.py; do \
	  case "$$(basename "$$f")" in _*|conftest.py) continue;; esac; \
	  found=1; echo "== $$f"; $(BIN)/python "$$f"; \
	done; \
	if [ $$found = 0 ]; then echo "bench: no bench/*.py yet"; fi

# ---------------------------------------------------------------- test

test: test-py test-js test-ui

# pytest exits 5 when it collects no test: not a failure while the suite is being written.
test-py: install pyc
	rc=0; $(BIN)/python -m pytest || rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest: no tests collected (exit 5), not counted as a failure"; rc=0; fi; \
	exit $$rc

test-js: install
	$(JLPM) test

chromium:
	@if [ -x "$(CHROMIUM)" ]; then \
	  echo "chromium: using $(CHROMIUM) ($$("$(CHROMIUM)" --version 2>/dev/null || echo '?'))"; \
	elif [ "$(CHROMIUM)" = /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "chromium: /usr/bin/chromium is missing, installing Debian's chromium"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	else \
	  echo "chromium: $(CHROMIUM) not found. Install Chromium (Debian: sudo apt-get install chromium)" >&2; \
	  echo "          or run: make test-ui CHROMIUM=/path/to/chromium" >&2; \
	  exit 1; \
	fi

$(UI_STAMP): ui-tests/package.json $(wildcard ui-tests/yarn.lock) ui-tests/.yarnrc.yml $(PY_STAMP)
	cd ui-tests && $(JLPM) install
	touch $@

test-ui: install chromium $(UI_STAMP)
	cd ui-tests && $(JLPM) playwright test

# ---------------------------------------------------------------- clean

clean:
	rm -rf lib tsconfig.tsbuildinfo guild_jupyter/labextension dist coverage \
	  ui-tests/test-results ui-tests/playwright-report .pytest_cache
	rm -f $(INSTALLED)

distclean: clean
	rm -rf $(VENV) node_modules ui-tests/node_modules *.egg-info
