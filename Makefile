# Two commands on a fresh Debian 12 machine:  make demo  |  make test
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
LAB := $(PY) lab/selfhost_lab.py

.PHONY: help setup demo test test-checks test-fast test-units test-sanity test-lab lint images lab-up lab-down lab-status

help:
	@echo "make demo       build the lab, deploy 1 master + 1 replica, verify, print how to connect"
	@echo "make test       every test: lint, fast module tests, molecule scenario in the lab"
	@echo "make test-fast  lint + module tests against local PostgreSQL 15 (no Docker, seconds)"
	@echo "make test-sanity  ansible-test sanity on the collection as it ships (built, installed)"
	@echo "make test-lab   molecule scenarios default (1+1 VMs, then backups with vm3 as the repository host and S3), failover (1+2 VMs: the scale checks, then failover), auto (2 + a witness, Patroni)"
	@echo "make test-lab-default | test-lab-backup | test-lab-scale | test-lab-failover | test-lab-auto   one scenario"
	@echo "make lab-up | lab-down | lab-status"

setup:
	@bash scripts/setup.sh

demo:
	@bash scripts/demo.sh

REPORTS := .lab/junit-sanity.xml .lab/junit-units.xml .lab/junit-lab-default.xml .lab/junit-lab-failover.xml \
	.lab/junit-lab-auto.xml
TIMED := scripts/timed.sh

# Each part's wall time and status land in .lab/times/ and the summary prints
# them.  The checks that need no lab (lint, sanity, the fast tests, one after
# the other) run while the lab scenarios run (one at a time: they share the
# lab's names and network).
test: setup
	@rm -f $(REPORTS) .lab/times/*
	@mkdir -p .lab && date +%s > .lab/test-started
	@$(MAKE) -k -j2 test-checks test-lab; status=$$?; \
	  $(PY) scripts/test_summary.py $(REPORTS) && exit $$status

test-checks:
	@$(MAKE) -j1 -k lint test-sanity test-units

test-fast: setup lint test-units

test-units:
	@mkdir -p .lab
	@$(TIMED) units $(PY) -m pytest -q --junitxml=.lab/junit-units.xml tests/unit tests/integration

test-sanity: setup
	@$(TIMED) sanity bash scripts/sanity.sh

lint:
	@$(TIMED) lint $(VENV)/bin/ansible-lint --profile production

test-lab: setup
	@status=0; for s in default failover auto; do $(TIMED) lab-$$s $(VENV)/bin/molecule test -s $$s || status=1; done; \
	  exit $$status

test-lab-%: setup
	@$(TIMED) lab-$* $(VENV)/bin/molecule test -s $*

images: setup
	$(LAB) images

lab-up: setup
	$(LAB) up vm1 vm2

lab-down:
	$(LAB) down

lab-status:
	$(LAB) status
