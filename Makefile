# Meterdesk: `make run` serves the app on http://127.0.0.1:5000; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench clean mutate

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m dev.devserver

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -m "not browser"

DEV_STAMP := $(VENV)/.installed-dev

$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

# mutmut over each rule module with its own test selection (tests/mutate.py; MODULES="billing/usage.py ..." for
# some); incremental (scratch copies in /tmp/meterdesk-mutate, verdicts in tests/mutation_results; MUTATE_FRESH=1
# runs every mutant); scores in tests/MUTATION.md. Not run by CI.
mutate: $(DEV_STAMP)
	$(BIN)/python tests/mutate.py $(MODULES)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
