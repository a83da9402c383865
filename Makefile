# The two commands of README.md: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test install lint typecheck imports pytest pytest-sqlite pytest-postgres schema snapshot bench

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
# The password goes by the environment: on the command line make would echo it, and ps would show it.
ifdef DEMO_PASSWORD
run: export CARELOOP_DEMO_PASSWORD = $(DEMO_PASSWORD)
endif
run: install
	$(BIN)/careloop demo
	$(BIN)/careloop serve

test: install lint typecheck imports pytest

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

imports:
	$(BIN)/lint-imports

# The whole suite twice, in separate processes (Tortoise caches SQL per connection name, not per
# dialect): on a SQLite file and on a fresh database on the PostgreSQL server at PG_TEST_URL, side by
# side (one core each); each run's output is printed whole when it ends.
pytest:
	$(MAKE) --no-print-directory -j2 --output-sync=target pytest-sqlite pytest-postgres

pytest-sqlite:
	$(BIN)/pytest -q

pytest-postgres:
	@if $(BIN)/python -m tests.postgres_ready "$(PG_TEST_URL)"; then \
		echo "PostgreSQL suite on $(PG_TEST_URL)"; \
		CARELOOP_TEST_DATABASE="$(PG_TEST_URL)" $(BIN)/pytest -q; \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL is not reachable at $(PG_TEST_URL): in CI that is a failure, not a skip."; exit 1; \
	else \
		echo "*** PostgreSQL suite SKIPPED: no server at $(PG_TEST_URL) (set PG_TEST_URL). ***"; \
	fi

schema: install
	$(BIN)/careloop schema export --output schema.graphql

# The schema a new database is made from (app/snapshot.py), written again after adding a migration; needs pg_dump.
snapshot: install
	$(BIN)/python -m app.snapshot "$(PG_TEST_URL)"

# careloop against a bare Starlette + asyncpg baseline, on PostgreSQL, with wrk (see bench/README.md).
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
