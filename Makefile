# `make run` sets everything up and serves the app; `make test` sets up and runs the suite.
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
SOCKETIO_JS := static/vendor/socket.io.min.js

.PHONY: run test test-long bench bench-cluster setup deps js translations messages db clean lock

# One process: app.py applies pending migrations and, on an empty database, seeds the demo.
run: setup
	$(PY) app.py --demo

# `make test`: ruff, then three pytest passes at the same time (tests/passes.py prints each one's
# wall time at the end): the whole suite on SQLite; the engine-dependent tests again on PostgreSQL
# (skipped with a message when no server answers, except in CI, where PostgreSQL and Redis must be
# there); the end-to-end and browser tests again with FAST_FANOUT=0. TEST_JOBS pytest-xdist
# workers per database pass. `make test-long` is the same with the long versions of the slow
# tests (TEST_LONG=1: a 30 s network drop, more fuzzing examples).
TEST_POSTGRES_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/test
TEST_JOBS ?= 2
export TEST_POSTGRES_URL TEST_JOBS PYTEST_ARGS

test: setup $(VENV)/.dev-installed bench/node_modules/.package-lock.json
	$(VENV)/bin/ruff check .
	node --test tests/js
	$(PY) tests/passes.py

test-long: setup $(VENV)/.dev-installed bench/node_modules/.package-lock.json
	$(VENV)/bin/ruff check .
	node --test tests/js
	TEST_LONG=1 $(PY) tests/passes.py

setup: deps js translations

# The interface's translations: tracker/translations/<language>/LC_MESSAGES/messages.po, compiled
# to .mo files (not committed). `make messages` extracts new strings and merges them into each .po.
CATALOGS := $(wildcard tracker/translations/*/LC_MESSAGES/messages.po)
translations: $(CATALOGS:.po=.mo)

%.mo: %.po $(VENV)/.installed
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@

messages: deps
	$(VENV)/bin/pybabel extract --no-location --sort-output -F babel.cfg -k t -k _l -o tracker/translations/messages.pot .
	$(VENV)/bin/pybabel update --no-fuzzy-matching -i tracker/translations/messages.pot -d tracker/translations

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
	$(MAKE) bench-cluster

# Several processes behind nginx (deploy/nginx.conf itself), on PostgreSQL with a private Redis;
# installs Debian's nginx-light when nginx is missing.
CLUSTER_ARGS ?= --json bench/results/cluster.json

bench-cluster: setup $(VENV)/.dev-installed bench/node_modules/.package-lock.json
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update -qq && apt-get install -y -qq nginx-light)
	$(PY) bench/cluster.py $(CLUSTER_ARGS)

bench/node_modules/.package-lock.json: bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund --loglevel=error

db: deps
	$(FLASK) init-db
	$(FLASK) seed-demo

clean:
	rm -rf $(VENV) node_modules bench/node_modules static/vendor
