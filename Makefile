# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install clean

$(BIN)/sge-deps: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q ".[test]"
	touch $@

# Reinstall the package itself every time (no dependencies: quick), as a regular
# wheel install rather than editable, so the tests run what a user installs.
install: $(BIN)/sge-deps
	rm -rf build  # setuptools' build/lib would carry modules since moved or deleted into the wheel
	$(BIN)/python -m pip install -q --no-deps --force-reinstall .

demo: install
	$(BIN)/sge demo

test: install
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build *.egg-info out
