# The two quick-start commands: `make demo` (the main job) and `make test` (the whole suite).
# Both create the virtual environment on first use; nothing else needs installing by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := server,postgres,redis,brokers,analytics,dev

.PHONY: demo test lint bench clean

$(BIN)/ordergate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

demo: $(BIN)/ordergate
	$(BIN)/ordergate demo

test: $(BIN)/ordergate
	bash scripts/ensure-chromium.sh
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(BIN)/ordergate
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
