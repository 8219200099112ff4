# The two commands of the README: `make run` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
# The lock of the development and CI environment (`make lock` rewrites it from pyproject.toml).
CONSTRAINTS := constraints.txt
export FLASK_APP := wsgi

.PHONY: run test test-fast setup translations lint extract lock

# What `make run` needs: the application and its runtime dependencies, nothing else.
$(VENV)/.runtime: pyproject.toml $(CONSTRAINTS)
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e .
	touch $@

# What `make test` and CI need: the runtime plus the extras test (with bench) and dev.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[test,dev]"
	touch $(VENV)/.runtime $@

setup: $(VENV)/.installed

# The compiled catalogue is committed (and shipped in the wheel); after editing the .po,
# recompile it and commit both (tests/test_wheel.py fails when they disagree).
translations: $(VENV)/.runtime
	$(BIN)/pybabel compile -f -d booking/translations

# Builds the SQLite database, loads the demo data, serves http://127.0.0.1:5000 in debug
# mode (the only mode that accepts the development SECRET_KEY).
run: $(VENV)/.runtime
	$(BIN)/flask --debug db upgrade
	$(BIN)/flask --debug seed
	$(BIN)/flask --debug run --host 127.0.0.1 --port 5000

# Rewrite the lock from pyproject.toml (newest versions only with UPGRADE=1).
lock: $(VENV)/.installed
	$(BIN)/uv pip compile pyproject.toml --extra test --extra dev --extra bench --universal \
		--python-version 3.11 $(if $(UPGRADE),--upgrade) -o $(CONSTRAINTS)

# One worker per core: one more was slower here (2 cores: 1,384 s against 1,260 s for the
# suite, more CPU in all). --durations names the slowest tests in CI's log.
TEST_WORKERS ?= auto

# The whole test suite, every database test on SQLite and on PostgreSQL.
test: setup
	./scripts/system-packages.sh
	./scripts/browser-deps.sh
	$(MAKE) --no-print-directory lint
	./scripts/audit.sh
	$(BIN)/pytest -n $(TEST_WORKERS) --durations=25

# The edit–test loop: SQLite only, no browser, no slow tests (not a substitute for `make test`).
test-fast: setup
	$(MAKE) --no-print-directory lint
	TEST_BACKENDS=sqlite $(BIN)/pytest -n auto -m "not browser and not slow"

# ruff; the layers (import-linter: [tool.importlinter]); the types of services and models
# (mypy: [tool.mypy]); the Dockerfile (hadolint).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

# Refresh the English catalogue after changing user-facing text.
extract: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -o booking/translations/messages.pot booking
	$(BIN)/pybabel update -i booking/translations/messages.pot -d booking/translations -l en
