# kexp: memory-pressure notification and network-swap survival for Linux 6.12 LTS.
#
#   make run        build the patched and baseline kernels, run every scenario, report
#   make test       what CI runs: lint + unit tests, series checks, kernels, VM scenarios
#   make check      lint + unit tests (no VM, under a minute)
#   make kernel     build the patched kernel (BASELINE=1: the unpatched one; KSRC=, DEBUG=1)
#   make scenario S=name [BASELINE=1] [P="key=value ..."]   one scenario in a VM
#   make shell      interactive shell in the patched guest (BASELINE=1 for the baseline)
#   make list       list scenarios
#   make series-check   checkpatch --strict and a build after every patch
#   make bench      latency/herd/idle-cost benchmarks, patched vs baseline vs peers

SHELL := /bin/bash
VENV ?= .venv
PY := $(CURDIR)/$(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1
OUT ?= out

HARNESS_OPTS := $(if $(KSRC),--ksrc $(KSRC)) $(if $(filter 1,$(DEBUG)),--debug)
BASEFLAG := $(if $(filter 1,$(BASELINE)),--baseline)
# GNU make itself exits 2 whenever a command fails: say what the harness said
# (1 = a check failed or the kernel crashed, 2 = infrastructure, 130 = interrupted)
RC_NOTE = { rc=$$?; echo "harness exit code $$rc (1 fail/crash, 2 infrastructure error)" >&2; exit $$rc; }

.PHONY: all deps pydeps sysdeps host-check check lint unit test kernel kernels run scenario shell list \
	series-check fetch bench clean

all: check

sysdeps:
	@scripts/install-deps

$(VENV)/.stamp: harness/requirements.txt
	@echo "deps: creating $(VENV) and installing Python packages" >&2
	@python3 -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r harness/requirements.txt
	@touch $@

pydeps: $(VENV)/.stamp

deps: sysdeps pydeps

lint: pydeps
	$(VENV)/bin/ruff check --config harness/ruff.toml harness tests

unit: pydeps
	$(PY) -m pytest -q tests/unit

check: lint unit

# no guest-only daemon (sshd, nbd-server, earlyoom) enabled or running on the host
host-check: pydeps
	$(PY) -m harness host-check

fetch: deps
	$(PY) -m harness $(HARNESS_OPTS) fetch

kernel: deps
	$(PY) -m harness $(HARNESS_OPTS) kernel $(BASEFLAG)

kernels: deps
	$(PY) -m harness $(HARNESS_OPTS) kernel
	$(PY) -m harness $(HARNESS_OPTS) kernel --baseline

series-check: deps
	scripts/check-series

list: pydeps
	@$(PY) -m harness list

run: deps
	@$(PY) -m harness $(HARNESS_OPTS) run --both || $(RC_NOTE)

scenario: deps
	@test -n "$(S)" || { echo "usage: make scenario S=<name> [BASELINE=1] [P=\"key=value ...\"]  (make list)"; exit 2; }
	@$(PY) -m harness $(HARNESS_OPTS) run $(S) $(BASEFLAG) $(foreach p,$(P),--param $(p)) || $(RC_NOTE)

shell: deps
	$(PY) -m harness $(HARNESS_OPTS) shell $(BASEFLAG) $(if $(S),--scenario $(S))

bench: deps
	$(PY) -m harness $(HARNESS_OPTS) bench

# CI: everything from nothing.  Kernels are built before pytest so build
# progress is visible; the per-patch builds of check-series then hit ccache;
# the VM tests reuse the kernels (and report build or boot problems as
# errors, not failures).
test: deps host-check check
	$(MAKE) --no-print-directory kernels
	scripts/check-series
	$(PY) -m pytest -v -rA tests/vm --junitxml=$(OUT)/junit-vm.xml

clean:
	rm -rf $(OUT) .pytest_cache .ruff_cache
