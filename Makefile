# polycopy — every target creates and uses the local virtualenv by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench fmt clean venv lock

venv: $(STAMP)

# Dependencies come only from the hashed lock (pip-compile --generate-hashes); the project
# itself is installed on top without resolving anything.
$(STAMP): pyproject.toml requirements.lock requirements-bootstrap.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
	    -r requirements-bootstrap.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/polycopy demo

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy --strict src

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Refresh the lock after changing dependencies in pyproject.toml (needs pip-tools).
lock:
	pip-compile --allow-unsafe --extra=dev --generate-hashes --no-emit-find-links \
	    --no-emit-index-url --output-file=requirements.lock --strip-extras pyproject.toml
	pip-compile --generate-hashes --no-emit-find-links --no-emit-index-url \
	    --output-file=requirements-runtime.lock --strip-extras pyproject.toml

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
