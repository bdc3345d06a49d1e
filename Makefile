# Two commands on a fresh Debian 12 machine:  make demo  |  make test
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
LAB := $(PY) lab/selfhost_lab.py

.PHONY: help setup demo test test-checks test-labs lab-track-1 lab-track-2 test-fast test-units test-sanity test-lab lint images lab-up lab-down lab-status

help:
	@echo "make demo       build the lab, deploy the production shape (2 database VMs + a witness that keeps the backups; auto mode, backups), verify, print how to connect"
	@echo "make test       every test: lint, sanity (each admitted ansible-core), fast module tests, the molecule scenarios in two labs side by side (LAB_TRACKS=1: one lab)"
	@echo "make test-fast  lint + module tests against local PostgreSQL 15 (no Docker, seconds)"
	@echo "make test-sanity  ansible-test sanity on the collection as it ships (built, installed)"
	@echo "make test-lab   molecule scenarios default (1+1 VMs, then backups with vm3 as the repository host and S3), failover (1+2 VMs: the scale checks, then failover), production (2 database VMs + a witness that is the backup repository host and S3: Patroni, backups)"
	@echo "make test-lab-default | test-lab-backup | test-lab-scale | test-lab-failover | test-lab-production   one scenario"
	@echo "make lab-up | lab-down | lab-status"

setup:
	@bash scripts/setup.sh

demo:
	@bash scripts/demo.sh

REPORTS := .lab/junit-sanity.xml .lab/junit-units.xml .lab/junit-lab-default.xml .lab/junit-lab-failover.xml \
	.lab/junit-lab-production.xml
TIMED := scripts/timed.sh

# Each part's wall time and status land in .lab/times/ and the summary prints
# them.  The checks that need no lab (lint, sanity, the fast tests, one after
# the other) run beside the lab scenarios, in two labs side by side
# (LAB_TRACKS=2, the default), each with its own names, network and secrets
# (LAB2: prefix, subnet, secrets dir): scenario default in one, failover then
# production in the other.  LAB_TRACKS=1 runs the three one after the other in one
# lab (about 20 minutes longer on 2 cores, docs/lab-and-tests.md).
LAB_TRACKS ?= 2
LAB2 := SELFHOST_LAB_PREFIX=selfhost-lab2 SELFHOST_LAB_SUBNET=172.30.1.0/24 SELFHOST_LAB_SECRETS=$(CURDIR)/.lab/lab2/.secrets
test: setup
	@rm -f $(REPORTS) .lab/times/*
	@mkdir -p .lab && date +%s > .lab/test-started
	@$(MAKE) -k -j2 test-checks test-labs; status=$$?; \
	  $(PY) scripts/test_summary.py $(REPORTS) && exit $$status

# The images once, before the labs that share them start (the checks, which
# need none, run beside the build).
test-labs:
	@$(TIMED) images $(LAB) images
	@$(MAKE) -k -j2 $(if $(filter 1,$(LAB_TRACKS)),test-lab,lab-track-1 lab-track-2)

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

# Each scenario starts from new VM containers with nothing inside but the
# lab's images (selfhost-lab/*, what a registry would serve), loaded into each
# VM's engine once and kept from one scenario, and one `make test`, to the
# next: the images the collection builds on a VM are removed (lab up --fresh).
test-lab: setup
	@$(LAB) down --keep-images
	@status=0; for s in default failover production; do $(TIMED) lab-$$s $(VENV)/bin/molecule test -s $$s || status=1; done; \
	  exit $$status

lab-track-1:
	@$(LAB) down --keep-images
	@$(TIMED) lab-default $(VENV)/bin/molecule test -s default

lab-track-2:
	@$(LAB2) $(LAB) down --keep-images
	@status=0; for s in failover production; do $(LAB2) $(TIMED) lab-$$s $(VENV)/bin/molecule test -s $$s || status=1; done; \
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
