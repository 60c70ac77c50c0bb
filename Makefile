# Set-up of a fresh machine: `make demo` or `make test` (both create .venv when missing).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,reference,ray,sevennet,mace

.PHONY: install demo test lint bench browser dft-libs clean

# GPAW (the crystal reference) compiles against LibXC and BLAS; install them where they are missing.
dft-libs:
	@[ -f /usr/include/xc.h ] && ls /usr/lib/*/libblas.so >/dev/null 2>&1 || \
	  { echo "installing libxc-dev and libopenblas-dev (LibXC and BLAS for GPAW, the crystal DFT reference)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxc-dev libopenblas-dev >/dev/null; }

# torch build: TORCH=cpu (default) takes PyTorch's CPU wheel index when it answers, else pip's configured
# sources (a local wheel folder, or PyPI, whose Linux x86_64 wheel is the CUDA build); TORCH=cuda takes PyPI's.
TORCH ?= cpu
TORCH_VERSION := 2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

$(VENV)/.installed: pyproject.toml | dft-libs
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# torch first, so that no dependency chooses its build
	@if [ "$(TORCH)" = cpu ] && $(PY) -c "import urllib.request as u; u.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=10)" 2>/dev/null; then \
	  echo "installing torch $(TORCH_VERSION), CPU build, from $(TORCH_CPU_INDEX)"; \
	  $(PY) -m pip install -q torch==$(TORCH_VERSION) --index-url $(TORCH_CPU_INDEX) --extra-index-url https://pypi.org/simple; \
	else \
	  echo "installing torch $(TORCH_VERSION) from pip's configured sources (TORCH=$(TORCH); PyTorch's CPU index not used)"; \
	  $(PY) -m pip install -q torch==$(TORCH_VERSION); \
	fi
	@$(PY) -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda or 'none (CPU build)')"
	# GPAW builds from source with g++; no wheel cache, so that a build made without LibXC is never reused
	CC=g++ $(PY) -m pip install -q --no-cache-dir 'gpaw>=25.1' 'gpaw-data>=1.2'
	$(PY) -c "from gpaw.xc.libxc import LibXC; LibXC('PBEsol')"   # fails loudly if GPAW lacks LibXC
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	# mace-torch declares e3nn==0.4.4 (breaks sevenn, and e3nn 0.4.4 fails on torch>=2.6); it runs on the
	# e3nn the extras install, so it comes without its declared deps (the 'mace' extra holds the rest).
	$(PY) -m pip install -q --no-deps "mace-torch==$$($(PY) -c 'from optbench.backbones import MACE_TORCH_VERSION as v; print(v)')"
	$(PY) -m optbench.data.gpaw_ref Si Na Cl Al   # PBEsol PAW setups, generated offline (seconds each)
	touch $@

install: $(VENV)/.installed

# The quick study, DEMO_WORKERS trials and analyses at a time in worker processes (default: 2 where there
# are at least 2 CPUs, one thread each; the results are the same for any count). DEMO_WORKERS=1: in this process.
DEMO_WORKERS ?= $(shell [ "$$(nproc 2>/dev/null || echo 1)" -ge 2 ] && echo 2 || echo 1)

demo: install
	$(VENV)/bin/optbench run --out demo_out $(if $(filter-out 1,$(DEMO_WORKERS)),--executor process --workers $(DEMO_WORKERS))

# The report test opens report.html in headless Chromium; where it is missing, make test installs Debian's
# chromium with apt-get (needs root; it says so first). Install it yourself to skip this step.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "make test: chromium is missing; installing Debian's chromium with apt-get (headless browser for the report test)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: install browser
	$(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check optbench tests bench

bench: install
	cd bench && ../$(PY) finetune_speed.py && ../$(PY) properties_speed.py && ../$(PY) hvp_speed.py && ../$(PY) study_scaling.py && ../$(PY) refine_speed.py && ../$(PY) trial_overhead.py

clean:
	rm -rf $(VENV) demo_out
