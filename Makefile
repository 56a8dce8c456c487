# Two entry points: `make run` starts mm on the embedded simulator, `make test` runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.toml

.PHONY: run test lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv installs what pip would (the same versions, checked with `pip freeze`), in about 10 s
# against pip's 55 s of resolving on this 2-core machine; pip only fetches uv itself.
$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv

$(VENV)/.installed-run: pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/mm start -c $(CONFIG)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check mm supervisors tests deploy
	$(BIN)/ruff format --check mm supervisors tests deploy
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy
	$(BIN)/mypy deploy/grafana/generate.py

# Bytecode is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE): every
# worker and every `mm` the tests start would compile mm's modules again (0.6 s of CPU each).
# Three workers on two cores: most e2e tests wait on sockets, subprocesses and the simulator,
# and two workers left a core idle for about 130 s of a run (14 min of CPU in 9m08s of
# pytest). Fresh-clone `bash .ci/run`, one after the other on a quiet machine: 9m40s with
# `-n auto` (2), 7m54s with `-n 3`.
pytest: $(VENV)/.installed-test
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 3 --dist worksteal

# The three at once (the linters' and mypy's single core beside pytest's workers, which leave
# some idle while tests wait on sockets and subprocesses).
test: $(VENV)/.installed-test
	$(MAKE) --no-print-directory -j3 lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
