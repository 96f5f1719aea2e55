# sovd-hub: `make run` starts a demo fleet, `make test` runs every check.
# Both create the virtual environment from the lock file when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
VEHICLES ?= 10

.PHONY: install run test proto bench lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --requirement requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

run: install
	$(BIN)/sovd-hub demo --vehicles $(VEHICLES)

test: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

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
