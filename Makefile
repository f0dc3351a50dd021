# `make run` sets everything up and serves the app; `make test` sets up and runs the suite.
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
SOCKETIO_JS := static/vendor/socket.io.min.js

.PHONY: run test bench setup deps js db clean lock

run: setup db
	$(PY) app.py

# The whole suite runs twice: on SQLite, then on PostgreSQL (skipped with a message when no
# server answers, except in CI, where PostgreSQL and Redis must be there).
TEST_POSTGRES_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/test

test: setup $(VENV)/.dev-installed bench/node_modules/.package-lock.json
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)
	@if $(PY) tests/reachable.py "$(TEST_POSTGRES_URL)"; then \
		echo "== the same suite on PostgreSQL =="; \
		TEST_DATABASE_URL="$(TEST_POSTGRES_URL)" $(PY) -m pytest $(PYTEST_ARGS); \
	elif [ "$$CI" = "true" ]; then echo "PostgreSQL is required in CI"; exit 1; \
	else echo "== PostgreSQL run skipped: no server at $(TEST_POSTGRES_URL) =="; fi

setup: deps js

deps: $(VENV)/.installed

# requirements*.txt pin every package, transitive ones too, with hashes: a fresh clone installs
# exactly what was tested. Edit requirements*.in, then `make lock`.
$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	touch $@

LOCK := .venv-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe --no-strip-extras --no-emit-index-url --no-emit-find-links

lock:
	test -x .venv-lock/bin/pip-compile || (python3 -m venv .venv-lock && .venv-lock/bin/pip install --quiet pip-tools==7.6.2)
	$(LOCK) --output-file requirements.txt requirements.in
	$(LOCK) --output-file requirements-dev.txt requirements-dev.in

# The Socket.IO browser client comes from npm, pinned by package-lock.json; it is not committed.
js: $(SOCKETIO_JS)

$(SOCKETIO_JS): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/socket.io-client/dist/socket.io.min.js node_modules/socket.io-client/dist/socket.io.min.js.map static/vendor/

# The fan-out benchmark: Tracker against a minimal Node socket.io server, same load client.
BENCH_ARGS ?= --readers 1000,5000,10000 --entries 20 --json bench/results/latest.json

bench: setup $(VENV)/.dev-installed bench/node_modules/.package-lock.json
	$(PY) bench/run.py $(BENCH_ARGS)

bench/node_modules/.package-lock.json: bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund --loglevel=error

db: deps
	$(FLASK) init-db
	$(FLASK) seed-demo

clean:
	rm -rf $(VENV) node_modules bench/node_modules static/vendor
