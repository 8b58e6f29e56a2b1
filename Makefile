# Everything the project needs is installed from here into a local virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
# PyTorch, needed only by the `gp` sampler (Optuna's GPSampler): the CPU build, not CUDA's.
# Where the index offers only the CUDA build, choose the CPU wheels, e.g.
#   make install TORCH='torch --index-url https://download.pytorch.org/whl/cpu'
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
# Test processes: most tests wait on single-threaded work (TensorFlow's import in the CLI
# and worker processes they start, small models' training steps), so two use both cores.
TEST_WORKERS ?= 2

.PHONY: install install-run run test lint format bench clean

# What a search needs: hpsearch with TensorFlow, Optuna, KerasTuner and PostgreSQL's driver.
$(RUN_STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[postgres]'
	touch $(RUN_STAMP)

# Also the `gp` sampler's PyTorch (the CPU build) and the development tools.
$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[postgres,gp,dev]'
	touch $(STAMP)

install-run: $(RUN_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/hpsearch run --data digits --space mlp --trials 30

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
