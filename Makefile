# The README's two commands: `make demo` and `make test`.
# Both create .venv with the exact versions of constraints.txt when it is missing.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2

.PHONY: setup demo test test-workflow test-slurm test-browser clean-results

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

## Run the fast tests: units, references (Captum, HF, scipy, statsmodels), calibration (a few minutes).
test: setup
	$(BIN)/python -m pytest -q -m "not workflow"

## Run the end-to-end Snakemake runs: the demo, each corpus, reruns, kills (about 15 minutes).
test-workflow: setup
	$(BIN)/python -m pytest -q -m workflow

## The demo through a real one-node Slurm on localhost (root; installs Debian's slurm + munge).
test-slurm: setup
	SPEECHNEURONS_SLURM_TEST=1 $(BIN)/python -m pytest -q tests/test_slurm.py

## The unit browser in headless Chromium, no console error (root; installs Debian's chromium if missing).
test-browser: setup
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	SPEECHNEURONS_BROWSER_TEST=1 $(BIN)/python -m pytest -q tests/test_browser.py

clean-results:
	rm -rf results .snakemake
