# gapreplay: every target uses .venv and builds it first when it is missing or stale.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS := .cache/jars
JARS_STAMP := $(JARS)/.complete
SAMPLE_CONFIG := configs/sample.yaml
export GAPREPLAY_JARS_DIR ?= $(CURDIR)/$(JARS)

.PHONY: setup corpus test lint format cluster-test bench clean

setup: $(STAMP) $(JARS_STAMP)

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools

# Re-installs only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The Delta Lake jars, fetched from Maven Central once; later runs are offline.
$(JARS_STAMP): | $(STAMP)
	$(PY) -m spark_jobs.delta_jars --to $(JARS)

corpus: setup
	$(VENV)/bin/gapreplay corpus --config $(SAMPLE_CONFIG) --lakehouse lakehouse --out shards

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

cluster-test: setup
	$(PY) -m pytest -q -m cluster -p no:cacheprovider tests/cluster

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf lakehouse shards bench/work .pytest_cache
