# Set-up of a fresh machine: `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,reference

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0   # CPU build first, so no dependency pulls a CUDA torch
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/optbench demo --out demo_out

test: install
	$(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check optbench tests bench

clean:
	rm -rf $(VENV) demo_out
