# The two-command promise: `make run` and `make test` on a fresh machine.
PYTHON ?= python3
PY := .venv/bin/python
DATA_DIR ?= data
STAMP := .venv/.installed-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)

.PHONY: setup samples run test bench clean-index
setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv .venv
	# torch first, pinned to the CPU build, so nothing pulls several GB of CUDA wheels
	.venv/bin/pip install --quiet torch==2.13.0
	.venv/bin/pip install --quiet -r requirements-dev.txt
	rm -f .venv/.installed-*
	touch $@

samples: data/samples/user-guide.pdf

data/samples/user-guide.pdf: data/samples/user-guide.md scripts/make_samples.py | $(STAMP)
	$(PY) -m scripts.make_samples

run: setup samples
	$(PY) -m ingest data/samples --data-dir $(DATA_DIR) --if-empty
	RAG_DATA_DIR=$(DATA_DIR) $(PY) -m streamlit run app.py

test: setup samples
	$(PY) -m pytest

bench: setup
	$(PY) bench/ingest_bench.py --out bench/results/ingest.json

clean-index:
	rm -rf $(DATA_DIR)/index $(DATA_DIR)/rag.sqlite*
