# Two entry points, both bootstrap a local virtual environment (.venv) on first use:
#   make tutorial   run every notebook in notebooks/ in order with default parameters -> build/tutorial/
#   make test       the test suite without the tests marked slow (at most 10 minutes on 2 CPU cores)
# and: make lint (ruff), make test-slow (only the slow tests), make test-all (everything); .ci/run runs
# lint, test and test-slow; make results: a fresh `make tutorial` run (notebook 05's ablation grid included),
# published to benchmarks/results/ and the README (re-measures every number after the checkpoint changes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install tutorial results lint test test-slow test-all clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

tutorial: $(STAMP)
	$(BIN)/python -m twgrpo_lib.tutorial.runner --out build/tutorial

# fresh: notebooks reuse what an earlier run left in build/tutorial, which would not be measured again
results: $(STAMP)
	rm -rf build/tutorial
	$(BIN)/python -m twgrpo_lib.tutorial.runner --out build/tutorial --publish

lint: $(STAMP)
	$(BIN)/ruff check twgrpo_lib tests benchmarks

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the slow tests include the DeepSpeed launch: install the deepspeed extra first
DEEPSPEED_STAMP := $(VENV)/.installed-deepspeed
$(DEEPSPEED_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q --no-build-isolation -e '.[deepspeed]'
	touch $(DEEPSPEED_STAMP)

test-slow: $(DEEPSPEED_STAMP)
	RUN_SLOW=1 $(BIN)/python -m pytest -q -m slow || test $$? -eq 5  # 5: no test is marked slow

test-all: $(DEEPSPEED_STAMP)
	RUN_SLOW=1 $(BIN)/python -m pytest -q

clean:
	rm -rf build .pytest_cache
