# The README's two commands: `make demo` and `make test`.
# Both create .venv with the exact versions of constraints.txt when it is missing.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2

.PHONY: setup demo test test-slurm test-browser clean-results

$(BIN)/snakemake: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

setup: $(BIN)/snakemake

## Run the whole workflow on the bundled demo (8 real RAVDESS clips, a tiny WavLM) and write the HTML report.
demo: setup
	$(BIN)/snakemake --cores $(CORES) --configfile config.yaml
	$(BIN)/snakemake --cores 1 --configfile config.yaml --report results/report.html
	@echo "Report: results/report.html"

## Run the test suite (unit tests and an end-to-end Snakemake run of the demo).
test: setup
	$(BIN)/python -m pytest -q

## The demo through a real one-node Slurm on localhost (root; installs Debian's slurm + munge).
test-slurm: setup
	SPEECHNEURONS_SLURM_TEST=1 $(BIN)/python -m pytest -q tests/test_slurm.py

## The unit browser in headless Chromium, no console error (root; installs Debian's chromium if missing).
test-browser: setup
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	SPEECHNEURONS_BROWSER_TEST=1 $(BIN)/python -m pytest -q tests/test_browser.py

clean-results:
	rm -rf results .snakemake
