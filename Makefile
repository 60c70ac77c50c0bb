# Set-up of a fresh machine: `make demo` or `make test` (both create .venv when missing).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,reference,ray

.PHONY: install demo test lint bench browser clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0   # CPU build first, so no dependency pulls a CUDA torch
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/optbench run --out demo_out

# The report test opens report.html in headless Chromium; install it where it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing chromium (headless browser for the report test)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: install browser
	$(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check optbench tests bench

bench: install
	cd bench && ../$(PY) finetune_speed.py && ../$(PY) properties_speed.py && ../$(PY) hvp_speed.py && ../$(PY) study_scaling.py

clean:
	rm -rf $(VENV) demo_out
