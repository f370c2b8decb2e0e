# The two commands a newcomer runs: `make demo` and `make test`. `make dev` opens the Dagster UI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000

.PHONY: demo test dev lint typecheck bench bench-quick clean stop help

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/leads demo

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -n 2 -q --durations=20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

dev: $(STAMP)
	$(BIN)/leads dev --port $(PORT)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick

# without a .venv nothing was started, and nothing is installed to stop it
stop:
	test ! -x $(BIN)/leads || $(BIN)/leads db stop

clean: stop
	rm -rf .leads

# the targets README mentions; a plain `make` only creates .venv (the first target)
help:
	@echo 'make demo              the whole pipeline on the shipped sample, offline (leads demo)'
	@echo 'make test              ruff, mypy and the whole test suite'
	@echo 'make dev [PORT=3000]   the Dagster UI and daemon (leads dev)'
	@echo 'make stop              stop the embedded PostgreSQL under .leads'
	@echo 'make clean             stop it and delete .leads, the database and all its data'
	@echo 'make lint              ruff check and ruff format --check'
	@echo 'make typecheck         mypy (strict) on the package'
	@echo 'make bench             every benchmark at the sizes README quotes: benchmarks/out/report.json'
	@echo 'make bench-quick       every benchmark at its smallest size, to see they all run: benchmarks/out/report-quick.json'
	@echo 'make .venv/.installed  create .venv and install the package with its dev tools (a plain make does this)'
	@echo 'make help              this list'
