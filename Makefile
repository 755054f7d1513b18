# The two set-up commands: `make run` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The virtualenv is rebuilt only when what it is made from changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -c1-12)

.PHONY: run test bench install lint train clean

run: install
	$(BIN)/citizenbot run

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	# Two workers: most tests wait on a started server, so one core alone sits half idle.
	# The tests that restart PostgreSQL and Redis run afterwards, on a machine to themselves.
	$(BIN)/pytest -q -n 2 --dist loadfile -m "not exclusive" --durations=15
	$(BIN)/pytest -q -m exclusive --durations=5

bench: install
	$(BIN)/python -m bench

train: install
	$(BIN)/citizenbot train

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

install: $(STAMP)

$(STAMP):
	@python=$$(scripts/find-python) && \
	if [ ! -x $(BIN)/python ] || ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
	  rm -rf $(VENV) && echo "creating $(VENV) with $$python" && $$python -m venv $(VENV); fi
	$(BIN)/python -m pip install -q --upgrade "pip<25"
	# One pip run, pinned by constraints.txt: a second run would let pip upgrade
	# Rasa's pins (SQLAlchemy, pydantic, packaging) and break it.
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip check
	rm -f $(VENV)/.installed-* && touch $@

clean:
	rm -rf $(VENV) models var reports
