# Two commands do everything on a fresh machine with Python 3.11+:
#   make demo   create the virtual environment, install, download from the in-process emulator
#   make test   install and run the test suite (what CI runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo-data

.PHONY: install demo test test-slow bench lint clean

# setup.py compiles the page scanner's fast path (dccd_cli/exchange/_pagescan.c) into the package.
$(STAMP): pyproject.toml setup.py dccd_cli/exchange/_pagescan.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	$(BIN)/dccd ohlc binance BTC-USDT ETH-USDT --span 1h --start 2024-01-01 --end 2024-01-08 --emulate --out $(DEMO)
	$(BIN)/dccd trades binance BTC-USDT --start 2024-01-01T00:00 --end 2024-01-01T01:00 --emulate --out $(DEMO)
	$(BIN)/python scripts/demo_summary.py $(DEMO)

# The suite waits far more than it computes (sockets, rate-limit windows, subprocesses), so
# it runs on more workers than the machine has cores (pytest-xdist; measured on 2 cores).
TEST_WORKERS ?= 4

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check dccd_cli adapters tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info .pytest_cache
