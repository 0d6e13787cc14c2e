# The README's commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install bench readme-settings clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

# The main job: a local GHL sandbox -> tap -> DuckDB through Meltano, then what landed.
demo: install
	$(BIN)/python scripts/demo.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Speed, requests and memory against the sandbox (minutes; not part of CI).
bench: install
	$(BIN)/python benchmarks/run.py

# Regenerate the README's settings table from the tap itself.
readme-settings: install
	$(BIN)/python scripts/readme_settings.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .demo .meltano output
