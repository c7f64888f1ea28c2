# The two quick-start commands: `make run` (the app on the default data) and `make test`.
# Each creates .venv on first use and installs the pinned requirements.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY      = $(VENV)/bin/python
PORT   ?= 8501
ADDRESS ?= 127.0.0.1

.PHONY: run test lint java e2e bench bench-spark bench-map bench-explorer bench-balance bench-team bench-exports bench-routes bench-review chromium clean

$(VENV)/.app: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.app requirements-dev.txt requirements-spark.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## run: install, then serve the app on http://localhost:$(PORT) (demo data on first start),
## to this machine only (ADDRESS=0.0.0.0 serves the network: README, "Serving a team")
run: $(VENV)/.app
	$(PY) -m ui.serve --server.port $(PORT) --server.address $(ADDRESS)

## chromium: Debian's Chromium for the browser tests (Playwright cannot download one here)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

## lint: ruff over the whole tree
lint: $(VENV)/.dev
	$(PY) -m ruff check .

## java: Debian's Java 17 runtime for Spark in local mode (the heavy path's tests)
java:
	@java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
	@java -version 2>&1 | head -1

## test: install everything the tests need, lint, then run every test (browser tests too)
test: $(VENV)/.dev chromium java lint
	$(PY) -m pytest

## bench: the import and aggregation benchmark (1M accounts, 10M deals; several minutes)
bench: $(VENV)/.dev
	$(PY) benchmarks/bench_import.py

## bench-map: map editing in headless Chromium and the per-stroke recompute (1M accounts)
bench-map: $(VENV)/.dev chromium
	$(PY) benchmarks/bench_map_edit.py

## bench-explorer: the Performance / Coverage pages' engine calls against pandas (needs a
## database: DB=benchmarks/out/map_edit_1m_10m/atlas.duckdb after `make bench-map`)
DB ?= benchmarks/out/map_edit_1m_10m/atlas.duckdb
bench-explorer: $(VENV)/.dev
	$(PY) benchmarks/bench_explorer.py --db $(DB)

## bench-team: 10 managers painting and undoing at once in Chromium (a few minutes)
bench-team: $(VENV)/.dev chromium
	$(PY) benchmarks/bench_team.py

## bench-exports: the PowerPoint and PDF meeting packs of the default data (a minute)
bench-exports: $(VENV)/.dev
	$(PY) benchmarks/bench_exports.py

## bench-review: a territory's review on the default data and, given BIG=PATH (e.g. the
## database `make bench-map` leaves), over 1M accounts / 10M deals with a stage history
bench-review: $(VENV)/.dev
	$(PY) benchmarks/bench_review.py $(if $(BIG),--big $(BIG))

## bench-routes: the rep's week for every territory of the default data, and 300 due accounts
bench-routes: $(VENV)/.dev
	$(PY) benchmarks/bench_routes.py

## bench-balance: automatic balancing against GerryChain and k-means (default data; minutes)
bench-balance: $(VENV)/.dev
	$(PY) -m pip install --quiet -r benchmarks/requirements-bench.txt
	$(PY) benchmarks/bench_balance.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

## bench-spark: the Spark job against load and attach at 1M, 3M and 10M deals, and the
## app's pages on the attached result (about 12 minutes on 2 cores)
bench-spark: $(VENV)/.dev java
	$(PY) benchmarks/bench_spark.py
