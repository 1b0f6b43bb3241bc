# gapreplay: every target uses .venv and builds it first when it is missing or stale.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS := .cache/jars
JARS_STAMP := $(JARS)/.complete
S3_JARS_STAMP := $(JARS)/s3/.complete
SAMPLE_CONFIG := configs/sample.yaml
export GAPREPLAY_JARS_DIR ?= $(CURDIR)/$(JARS)

.PHONY: setup corpus pretrain evaluate audit test lint format cluster-test fault-test bench clean

setup: $(STAMP) $(JARS_STAMP) $(S3_JARS_STAMP)

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

# hadoop-aws and the AWS SDK v2 modules it uses (~13 MB), for s3a:// locations.
$(S3_JARS_STAMP): | $(JARS_STAMP)
	$(PY) -m spark_jobs.delta_jars --to $(JARS) --set s3

corpus: setup
	$(VENV)/bin/gapreplay corpus --config $(SAMPLE_CONFIG) --lakehouse lakehouse --out shards

# The tiny model from ./shards (made by `make corpus` when missing); each run starts afresh.
pretrain: setup
	@test -f shards/manifest.json || $(MAKE) corpus
	$(VENV)/bin/gapreplay pretrain --config configs/pretrain_tiny.yaml --fresh

# The benchmark harness on what `make pretrain` exported (checkpoints/tiny/hf).
evaluate: setup
	@test -f checkpoints/tiny/hf/config.json || $(MAKE) pretrain
	$(VENV)/bin/gapreplay evaluate --config configs/evaluate_sample.yaml --lakehouse lakehouse

# The overview tables, and the HTML report of the build in ./lakehouse and ./shards.
audit: setup
	@test -d lakehouse/gold/corpus || $(MAKE) corpus
	$(VENV)/bin/gapreplay report --lakehouse lakehouse --shards shards --out audit/report.html

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

# Killed drivers and workers, concurrent runs: each must end with the undisturbed build.
fault-test: setup
	$(PY) -m pytest -q -m fault -p no:cacheprovider tests/faults

bench: setup
	$(PY) bench/run_all.py

# The pipeline at 10k/100k/300k documents and parse/dedup/tokenize at 1M (hours on 2 cores);
# `make bench` leaves it out: bench_scale.py run bare only prints how to run it.
.PHONY: bench-scale
bench-scale: setup
	$(PY) -m bench.bench_scale --full

clean:
	rm -rf lakehouse shards checkpoints eval_results audit bench/work .pytest_cache
