# The two commands of the README: `make run` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: run test test-fast setup translations lint extract

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed translations

translations: $(VENV)/.installed
	$(BIN)/pybabel compile -f -d booking/translations

# Sets up, builds the SQLite database, loads the demo data, serves http://127.0.0.1:5000
run: setup
	$(BIN)/flask db upgrade
	$(BIN)/flask seed
	$(BIN)/flask run --host 127.0.0.1 --port 5000

# The whole test suite, every database test on SQLite and on PostgreSQL.
test: setup
	./scripts/system-packages.sh
	./scripts/browser-deps.sh
	$(MAKE) --no-print-directory lint
	./scripts/audit.sh
	$(BIN)/pytest -n auto

# The edit–test loop: SQLite only, no browser, no slow tests (not a substitute for `make test`).
test-fast: setup
	$(MAKE) --no-print-directory lint
	TEST_BACKENDS=sqlite $(BIN)/pytest -n auto -m "not browser and not slow"

# ruff; the layers (import-linter: [tool.importlinter]); the types of services and models
# (mypy: [tool.mypy]).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Refresh the English catalogue after changing user-facing text.
extract: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -o booking/translations/messages.pot booking
	$(BIN)/pybabel update -i booking/translations/messages.pot -d booking/translations -l en
