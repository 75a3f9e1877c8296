# Two commands for a fresh machine:  `make demo` (set up + run the built-in demo), `make test` (set up + run the tests).
# Each creates .venv on first use; a second run reinstalls nothing unless pyproject.toml changed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.semiasr-installed
# The CPU build of PyTorch (the package itself only asks for a range; a bare `torch` pulls a multi-GB CUDA build).
TORCH  ?= torch==2.13.0

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/semiasr demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -n 2 $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
