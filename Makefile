# The two commands of README.md: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test install lint typecheck imports pytest schema

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Migrates the SQLite database, creates var/master.key (0600) if absent, seeds the demo institution
# (once; set DEMO_PASSWORD to choose the demo accounts' password) and serves http://127.0.0.1:8000/graphql.
run: install
	$(BIN)/careloop demo $(if $(DEMO_PASSWORD),--password "$(DEMO_PASSWORD)")
	$(BIN)/careloop serve

test: install lint typecheck imports pytest

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

imports:
	$(BIN)/lint-imports

pytest:
	$(BIN)/pytest -q

schema: install
	$(BIN)/careloop schema export --output schema.graphql
