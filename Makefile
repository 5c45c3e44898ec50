# Campus Errand — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test test-fast lint bench system-deps serve clean messages

$(STAMP): requirements.txt requirements-dev.txt
	@scripts/system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $(STAMP)

system-deps:
	@scripts/system-deps.sh --browser

## demo: run the platform with a demo campus, demo accounts and simulated riders
demo: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_campus
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py demo --host $(HOST) --port $(PORT)

## serve: the platform without simulated riders
serve: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo --host $(HOST) --port $(PORT) --no-sim

## test: the whole suite (browser tests included) on the current settings
test: $(STAMP) system-deps
	$(BIN)/pytest

## test-fast: everything but the browser tests
test-fast: $(STAMP)
	$(BIN)/pytest -m "not e2e"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

## messages: refresh the Chinese catalog from the code (then translate the new entries) and compile it
messages: $(STAMP)
	$(BIN)/python manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var --ignore=tests --ignore=bench
	$(BIN)/python manage.py compilemessages -l zh_Hans --ignore=.venv

bench: $(STAMP)
	$(BIN)/python bench/dispatch.py --quick

clean:
	rm -rf var/test_*.sqlite3 .pytest_cache
