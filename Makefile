# sovd-hub: `make run` starts a demo fleet, `make test` runs every check.
# Both create the virtual environment from the lock file when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
VEHICLES ?= 10

CONSOLE_SOURCES := $(wildcard console/package.json console/package-lock.json console/index.html \
	console/vite.config.ts console/tsconfig*.json) $(shell find console/src console/public \
	-type f 2>/dev/null)
NO_NODE := the web console needs Node.js 20 and npm (apt-get install nodejs npm, or https://nodejs.org)

.PHONY: install run test proto bench lock clean console console-check

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --requirement requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

run: install
	@$(MAKE) --no-print-directory console || echo "make run: going on without the console" \
		"(its pages will say how to build it); the API, /docs and the demo fleet work" >&2
	$(BIN)/sovd-hub demo --vehicles $(VEHICLES)

test: install console console-check
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# The web console (console/): its packages from the lock file, then its build in console/dist.
console: console/dist/index.html

console/node_modules/.package-lock.json: console/package-lock.json
	@command -v npm >/dev/null || { echo "make: $(NO_NODE)" >&2; exit 1; }
	@echo "console: installing its packages (npm ci, about a minute the first time)"
	cd console && npm ci --no-audit --no-fund --loglevel=error

console/dist/index.html: console/node_modules/.package-lock.json $(CONSOLE_SOURCES)
	@echo "console: building it (vite build)"
	cd console && npm run --silent build

# Type check, lint and unit tests of the console.
console-check: console/node_modules/.package-lock.json
	cd console && npm run --silent check

# Regenerate the grpclib + protobuf stubs from proto/*.proto.
proto: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc -I. \
		--python_out=. --pyi_out=. --grpclib_python_out=. proto/vehicle_link.proto

# `make bench`: the short run of every scenario with charts, then BENCHMARKS.md;
# `make bench ARGS="hold --vehicles 20000"`: one scenario.
bench: install
ifeq ($(strip $(ARGS)),)
	$(BIN)/python -m bench all --quick --chart
	$(BIN)/python -m bench report
else
	$(BIN)/python -m bench $(ARGS)
endif

# Re-resolve the pinned versions (run after changing pyproject.toml's dependencies).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet ".[dev]"
	.lock-venv/bin/python -m pip freeze --exclude sovd-hub > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
