# Two commands on a fresh machine: `make run` (the whole pipeline) and `make test` (the suite).
# Python 3.11, 3.12 or 3.13: the first that runs of python3.11 (the record's), python3.12, python3.13 and
# python3, or the one PYTHON names.
PYTHONS := 3.11 3.12 3.13
WANTED := Python 3.11, 3.12 or 3.13
VERSION_OK := import sys; sys.exit(f"{sys.version_info[0]}.{sys.version_info[1]}" not in "$(PYTHONS)".split())
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach p,python3.11 python3.12 python3.13 python3,$(shell $(p) -c '$(VERSION_OK)' >/dev/null 2>&1 && echo $(p))))
endif
VENV := .venv
PY := $(VENV)/bin/python
# Stages run `python -m stages.X`: make DVC find the venv's python first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run install install-gpu test test-fast lint lock data-source browser cluster
# The chart page `dvc plots show` writes, with its scripts inside (fmnist/utils/plots_page.py).
PLOTS_PAGE := .dvc/plots/offline.html

# The pipeline, then the verdict on whether it reproduced the committed results of record.
run: $(VENV)/.installed data-source $(PLOTS_PAGE)
	dvc repro
	$(PY) -m fmnist.reproduction

# The environment alone, e.g. before `dvc pull` on a machine that shares a remote.
install: $(VENV)/.installed $(PLOTS_PAGE)

# A machine with an NVIDIA GPU: TensorFlow with CUDA in place of tensorflow-cpu (they share one
# module, so one goes before the other comes). Untested here: no GPU on this project's machines.
install-gpu: $(VENV)/.installed
	$(PY) -m pip uninstall --quiet --yes tensorflow-cpu
	$(PY) -m pip install --quiet -r requirements-gpu.txt -c constraints.txt

# The lock, resolved anew by uv for every platform at once after a requirements file changed; a pin
# already in it stays (uv keeps the output's versions), so results of record keep their bits.
lock: $(VENV)/.installed-dev
	$(VENV)/bin/uv pip compile --quiet --universal --annotation-style line --python-version 3.11 --custom-compile-command "make lock" \
	  requirements-dev.txt requirements-gpu.txt -c constraints.txt -o constraints.txt

# The whole suite, as CI runs it; the 15 slowest tests are listed at the end.
test: lint $(PLOTS_PAGE) browser cluster
	pytest --durations=15

# The unit tier: tests in this process on tiny models and synthetic data; not the end-to-end ones
# (dvc in a temporary repo) nor the slow ones (other processes, shipped-size models, many epochs).
test-fast: lint $(PLOTS_PAGE)
	pytest -m "not e2e and not slow" --durations=5

lint: $(VENV)/.installed-dev
	ruff check .
	ruff format --check .

$(PY):
	@"$(PYTHON)" -c '$(VERSION_OK)' >/dev/null 2>&1 || { echo "make: $(if $(PYTHON),$(PYTHON) is not $(WANTED),no $(WANTED) on PATH); name one: make PYTHON=/path/to/python3.12 run" >&2; exit 1; }
	@[ "$$(uname -sm)" != "Darwin x86_64" ] || { echo "make: TensorFlow 2.21 has no build for Intel Macs; this project installs on Linux x86_64 or aarch64 (Windows: WSL) and macOS on Apple silicon" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall only when a requirements file changes. constraints.txt is the lock: every package at one
# version, for every platform and Python this project supports (environment markers), so plain pip
# installs exactly what the record ran with.
$(VENV)/.installed: requirements.txt constraints.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

# Offline Debian machines get the data from the dataset-fashion-mnist package.
data-source: $(VENV)/.installed
	@$(PY) -m stages.download --probe || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing Debian's dataset-fashion-mnist"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	  else \
	    echo "make: no data source answers; run: sudo apt-get install dataset-fashion-mnist, then make run" >&2; \
	    exit 1; \
	  fi; }

# vega, vega-lite and vega-embed from the npm registry (pinned by .dvc/plots/html/package-lock.json),
# inlined into the page template DVC fills, which DVC is then pointed at: the charts render offline.
# Without Node.js only this page is missing: DVC's own page loads the same scripts from a CDN.
$(PLOTS_PAGE): .dvc/plots/html/page.html .dvc/plots/html/package-lock.json $(VENV)/.installed
	@command -v npm >/dev/null || { echo "make: no npm (Node.js), so no offline chart page: dvc plots show writes DVC's own, whose charts load their scripts from the internet" >&2; exit 0; } \
	  && npm ci --prefix .dvc/plots/html --silent --no-audit --no-fund \
	  && $(PY) -m fmnist.utils.plots_page \
	  && $(VENV)/bin/dvc config --local plots.html_template plots/offline.html

# Chromium, for the test that opens the chart page with the network off (Debian's package).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing Debian's chromium, for the chart page's test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "make: the chart page's test needs chromium: sudo apt-get install chromium" >&2; \
	    exit 1; \
	  fi; }

# Slurm and munge, for the tests that run a study as an array job on a one-node cluster (Debian's
# packages; the tests start and stop the daemons themselves). Without root they skip, saying why.
cluster:
	@command -v sbatch >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing Debian's slurm-wlm and munge, for the Slurm tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; \
	  else \
	    echo "make: no Slurm here, so its tests skip; to run them: sudo apt-get install slurm-wlm munge" >&2; \
	  fi; }
