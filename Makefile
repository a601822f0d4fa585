# `make run` and `make test` set up a fresh Debian machine and then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# command:package pairs installed through apt when the command is missing
SYSTEM_DEPS := chromium:chromium ffmpeg:ffmpeg pg_ctlcluster:postgresql redis-server:redis-server \
	nginx:nginx openssl:openssl systemd-analyze:systemd turnserver:coturn

.PHONY: run test setup system lint typecheck imports unit bench clean

run: setup
	$(VENV)/bin/avatar-agent serve $(ARGS)

test: setup lint typecheck imports
	$(PY) -m pytest -ra $(PYTEST_ARGS)

setup: system $(STAMP)

system:
	@missing=""; \
	for pair in $(SYSTEM_DEPS); do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (mediapipe 0.10.21 and the CPU torch wheel); set PYTHON=python3.11")'
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip<26" wheel
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check src tests scripts

typecheck: setup
	$(VENV)/bin/mypy

# the layers contract in pyproject.toml: imports follow the data flow
imports: setup
	$(VENV)/bin/lint-imports

unit: setup
	$(PY) -m pytest -q tests/unit

bench: setup
	$(PY) scripts/bench_call.py

clean:
	rm -rf $(VENV) var
