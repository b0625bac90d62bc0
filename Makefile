# Troc — the two commands of the README, and a few helpers.
#   make run    set up .venv, create a node in ./data on first start, serve it
#   make test   set up .venv with the test extras, run the whole suite
#   make demo   three peered demo nodes with French annonces; Ctrl-C stops them

PYTHON ?= python3
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 8080
PUBLIC_URL ?= http://$(HOST):$(PORT)
DATA   ?= data
NAME   ?= Troc Agen
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
TEST_STAMP = $(VENV)/.installed-test

.PHONY: run test install install-test demo clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

install: $(STAMP)
install-test: $(TEST_STAMP)

# The node announces the URL it serves, whatever port it was created with.
run: $(STAMP)
	@test -f $(DATA)/node.key || $(BIN)/troc --data $(DATA) init \
		--name "$(NAME)" --url $(PUBLIC_URL) --listen $(HOST):$(PORT)
	TROC_PUBLIC_URL=$(PUBLIC_URL) $(BIN)/troc --data $(DATA) run --listen $(HOST):$(PORT)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/troc demo

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/reconcile.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
