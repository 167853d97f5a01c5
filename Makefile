# Two entry points, both bootstrap a local virtual environment (.venv) on first use:
#   make tutorial   run every notebook in notebooks/ in order with default parameters -> build/tutorial/
#   make test       run the test suite (what CI runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install tutorial test test-all clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

tutorial: $(STAMP)
	$(BIN)/python -m twgrpo_lib.tutorial.runner --out build/tutorial

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	RUN_SLOW=1 $(BIN)/python -m pytest -q

clean:
	rm -rf build .pytest_cache
