# `make run` and `make test` set everything up on a fresh Debian machine the first time.
# (systemd: its systemd-analyze checks deploy/systemd. The image test in tests/e2e/test_packaging.py
# also builds and runs the container where podman, runc and debootstrap are installed.)
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
DEB_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra \
                tesseract-ocr-spa tesseract-ocr-osd fonts-dejavu-core \
                systemd curl openssl poppler-utils qpdf softhsm2 chromium

# `make test-postgres`: the same suite on PostgreSQL, each test in a fresh schema of this database
# (tests/databases.py). Tests that open no database are skipped there: the SQLite run covers them.
TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test test-postgres setup system-deps lint bench cluster clean

run: setup
	$(VENV)/bin/ocrvault serve

# A real local cluster (PostgreSQL and Redis of this machine, moto S3, 2 API nodes, 2 workers,
# a scheduler) until Ctrl-C; see docs/deploy.md. It leaves `make run`'s data dir alone.
cluster: setup
	$(VENV)/bin/python scripts/cluster.py

test: setup
	env -u OCRVAULT_TEST_DATABASE_URL $(VENV)/bin/pytest

test-postgres: setup
	OCRVAULT_TEST_DATABASE_URL='$(TEST_DATABASE_URL)' $(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/mypy

bench: setup
	$(VENV)/bin/python bench/throughput.py

setup: system-deps $(STAMP)

system-deps:
	@dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1 || { \
	  echo "Installing Debian packages: $(DEB_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES); }

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
