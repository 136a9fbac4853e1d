# Set-up and everyday commands. `make run` and `make test` work on a fresh machine: they create .venv
# and install everything first (only again when a requirements file or pyproject.toml changes), then the
# project itself in editable mode, so `trainer-core`, `python -m trainer_core` and `streamlit run
# dashboard/app.py` find the packages from any folder.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup run test lint format e2e bench browser pg clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	# torch first and pinned: the CPU build on this machine's disk, never a multi-GB CUDA download.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	# The project last, without its dependencies: requirements.txt installed them, pinned; resolving
	# pyproject's looser ranges again could only move a pin (torch above all). No build isolation: the
	# build backend (setuptools) is in the venv, and an isolated build would need the network.
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Debian's Chromium for the end-to-end tests (Playwright's own browser download cannot work offline),
# and an emoji font: the dashboard's status icons are emoji, drawn as empty boxes in screenshots without it.
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -f $(EMOJI_FONT) ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; \
	fi
	@/usr/bin/chromium --version

# Debian's PostgreSQL server for the tests that run the store on PostgreSQL too (each test session starts
# its own throwaway server on a free port; nothing is configured system-wide). Debian keeps initdb and
# pg_ctl off the PATH, in /usr/lib/postgresql/<version>/bin: tests/pg.py looks there.
pg:
	@if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi
	@ls -d /usr/lib/postgresql/*/bin | head -1

run: setup
	$(BIN)/streamlit run dashboard/serve.py --server.port $(PORT)

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: setup browser pg lint
	$(BIN)/python -m pytest -q --timeout 900

e2e: setup browser
	$(BIN)/python -m pytest -q -m e2e

bench: setup
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
