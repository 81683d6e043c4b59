# relicflow — two commands on a fresh machine with Python 3.11 and make:
#   make demo   install into .venv, put sample scans in the inbox, run everything (Ctrl-C stops)
#   make test   install test needs (Debian's chromium, PostgreSQL), run the whole suite on SQLite and PostgreSQL

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: demo test install test-install system-test-deps bench clean-demo messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# pip's output goes to a log (setuptools' editable-install warnings are noise); shown if it fails.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing relicflow into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/pip install -e . > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.installed
	@echo "installing test dependencies into $(VENV)"
	@$(BIN)/pip install -e '.[test]' >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $@

install: $(VENV)/.installed

test-install: $(VENV)/.test-installed system-test-deps

# The browser tests drive Debian's chromium (a Playwright browser download does not work offline).
# libjpeg-turbo-progs' cjpeg writes the arithmetic-coded JPEGs the validation tests decode.
system-test-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium fonts-wqy-microhei"; \
	command -v cjpeg >/dev/null || missing="$$missing libjpeg-turbo-progs"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's$$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "NOTE:$$missing missing and apt-get not usable: the tests that need them will be skipped"; fi; \
	fi

demo: $(VENV)/.installed
	$(BIN)/relicflow init --demo
	$(BIN)/relicflow serve

# The whole suite on SQLite and, at the same time (the machine has two cores; each pass waits on servers
# much of the time), the flows, end-to-end and CLI tests on a throwaway PostgreSQL. The PostgreSQL pass
# keeps its own temporary folder and prints its log after the SQLite pass; either failing fails the target.
PG_TESTS = tests/flows tests/test_end_to_end.py tests/relicflow/test_cli.py tests/relicflow/test_review_queue.py
test: test-install
	@rm -f .postgres-tests.log
	@.ci/with-postgres $(BIN)/python -m pytest -p no:cacheprovider --basetemp=$(CURDIR)/.postgres-tests.tmp $(PG_TESTS) \
	    > .postgres-tests.log 2>&1 & pg=$$!; \
	$(BIN)/python -m pytest; sqlite=$$?; \
	echo "--- PostgreSQL pass (started alongside) ---"; wait $$pg; pgstatus=$$?; cat .postgres-tests.log; \
	rm -rf .postgres-tests.tmp; \
	echo "SQLite pass exit $$sqlite, PostgreSQL pass exit $$pgstatus"; \
	test $$sqlite -eq 0 && test $$pgstatus -eq 0

bench: $(VENV)/.installed
	$(BIN)/python bench/bench_hashing.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_isolated.py
	$(BIN)/python bench/review_queue.py

# The gettext catalogues (relicflow/locale/*/LC_MESSAGES/relicflow.po) after adding or removing a message in
# the code or templates: Babel extracts the ids (babel.cfg), new ones are added empty to both languages,
# unused ones dropped; then it lists what is still to translate. README "Adding a message".
messages: $(VENV)/.installed
	$(BIN)/python -m tools.messages update

clean-demo:
	rm -rf relicflow-data
