# One command to install and serve, one to install and test. Both create ./.venv with the machine's python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test install lint bench record

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: install  ## install, then serve on http://127.0.0.1:8321 (embedded model, SQLite)
	$(BIN)/respond serve $(ARGS)

test: install  ## install, then run the whole suite (offline: replayed recordings, embedded model)
	$(BIN)/python -m pytest $(ARGS)

lint: install
	$(BIN)/ruff check src tests bench

bench: install  ## latency/CPU benchmark against a fast fake upstream (see bench/README.md)
	$(BIN)/python bench/run.py $(ARGS)

record: install  ## re-record tests/recordings: the embedded model, or RESPOND_RECORDED_MODEL=openai/gpt-4o with a key
	$(BIN)/python -m pytest tests/recorded --record-mode record $(ARGS)
