# Two commands for a fresh machine (see README.md):
#   make demo   — virtualenv, install, embedded sample, pipeline through papermill
#   make test   — the same virtualenv when missing, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv sample clean bench browser-setup

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 >/dev/null
	@# compile the geometry's numba kernels into their cache now: else the first run
	@# pays it (≈ 7 s on 2 cores)
	$(BIN)/python -c 'from astropy.utils import iers; iers.conf.auto_download = False; \
		from vespa_curation.geometry.hfc_ar import warm_up; warm_up()'
	touch $(STAMP)

venv: $(STAMP)

sample: $(STAMP)
	$(BIN)/vespa-curate sample

demo: sample
	$(BIN)/vespa-curate run all

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_hfc1ar.py

clean:
	rm -rf outputs/runs outputs/dachs outputs/samples

# Debian chromium (+ fonts) for the `browser` tests; never a downloaded browser
browser-setup:
	bash scripts/setup_browser.sh
