# polycopy — every target creates and uses the local virtualenv by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench fmt clean venv lock install

PREFIX ?= /opt/polycopy
ETC    ?= /etc/polycopy
UNITS  ?= /etc/systemd/system

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

# The service layout of README "As a systemd service" (run as root): the runtime venv in
# $(PREFIX) from the hashed runtime lock plus polycopy's own wheel (built here, resolving
# nothing), the example config in $(ETC) unless one is there, and the unit file.
install: $(STAMP)
	rm -rf build/wheel && $(BIN)/pip wheel --quiet --no-deps --no-build-isolation -w build/wheel .
	$(PYTHON) -m venv $(PREFIX)/.venv
	$(PREFIX)/.venv/bin/python -m pip install --quiet --disable-pip-version-check \
	    --require-hashes -r requirements-bootstrap.lock
	$(PREFIX)/.venv/bin/pip install --quiet --disable-pip-version-check --require-hashes \
	    -r requirements-runtime.lock
	$(PREFIX)/.venv/bin/pip install --quiet --disable-pip-version-check --no-deps \
	    --force-reinstall build/wheel/polycopy-*.whl
	install -d -m 0755 $(ETC) $(UNITS)
	[ -e $(ETC)/polycopy.yaml ] || install -m 0600 config/polycopy.example.yaml $(ETC)/polycopy.yaml
	install -m 0644 systemd/polycopy.service $(UNITS)/polycopy.service
	@echo "installed; next: edit $(ETC)/polycopy.yaml, then"
	@echo "  systemctl daemon-reload && systemctl enable --now polycopy"

# Refresh the lock after changing dependencies in pyproject.toml (needs pip-tools).
lock:
	pip-compile --allow-unsafe --extra=dev --generate-hashes --no-emit-find-links \
	    --no-emit-index-url --output-file=requirements.lock --strip-extras pyproject.toml
	pip-compile --generate-hashes --no-emit-find-links --no-emit-index-url \
	    --output-file=requirements-runtime.lock --strip-extras pyproject.toml

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
