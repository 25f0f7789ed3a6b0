# microlws: make run | make test | make bench | make fuzz
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MICROPYTHON ?= $(abspath $(BIN)/micropython)
export MICROPYTHON

PORT ?= 7681
TLS_PORT ?= 7682
DOCROOT ?=
HEAP ?=
LOGLEVEL ?=
ZIP ?=
PYTEST_ARGS ?=
# make client
URL ?=
PROTOCOL ?=
ECHO ?=
COUNT ?=
SEND ?=
DEFLATE ?=

# a value as one single-quoted shell word (URLs carry ? and &)
shq = '$(subst ','\'',$(1))'

.PHONY: run client test bench fuzz setup debs cross unix32 mpy clean help

help:
	@echo "make run    the test server on the unix port (http://localhost:$(PORT))"
	@echo "            PORT=8080 TLS_PORT=8443 DOCROOT=folder HEAP=160K LOGLEVEL=15 MICROPYTHON=path"
	@echo "            ZIP=1 (the test page from a ZIP archive of www/)"
	@echo "            CONFIG=file.json (serve that configuration, lws.config; reloaded when it changes)"
	@echo "make client URL=ws://host:port/path   the test client on the unix port"
	@echo "            PROTOCOL=name ECHO=1 DEFLATE=1 COUNT=n SEND=text HEAP=64K LOGLEVEL=15"
	@echo "make test   the whole test suite"
	@echo "make bench  speed and memory against Microdot and a raw socket loop"
	@echo "make unix32 the 32-bit unix port with lws frozen (build/unix32/<board>/micropython)"
	@echo "            MPY_SRC=tree-or-tarball"
	@echo "make fuzz   the fuzz test, 20x longer, seed from the clock"
	@echo "            FUZZ_SEED=n (replay a run) FUZZ_CASES=n FUZZ_KEEPGOING=1 FUZZ_HEAP=128K"

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Debian tools the tests use as real peers (tests/conftest.py PEERS: curl,
# openssl, the lws test apps, dig, Chromium for the test page) and their
# packages. A missing peer fails the tests (tests/test_browser.py skips
# without Chromium, for pytest run by hand), so make test stops here when
# they cannot be installed.
PEER_TOOLS ?= curl openssl libwebsockets-test-client libwebsockets-test-server dig chromium
PEER_DEBS ?= curl openssl libwebsockets-test-server bind9-dnsutils chromium
APT ?= apt-get
missing_peers = for t in $(PEER_TOOLS); do command -v $$t >/dev/null || printf ' %s' $$t; done

debs:
	@missing=$$($(missing_peers)); [ -z "$$missing" ] && exit 0; \
	echo "make: the tests' peers are missing:$$missing; installing $(PEER_DEBS)" >&2; \
	{ $(APT) update -qq && $(APT) install -y -qq $(PEER_DEBS); } >&2 || \
	    { echo "make: could not install the Debian packages $(PEER_DEBS)," \
	           "the tests need$$missing (as root: apt-get install $(PEER_DEBS))" >&2; \
	      exit 1; }; \
	missing=$$($(missing_peers)); [ -z "$$missing" ] || \
	    { echo "make: still missing after installing $(PEER_DEBS):$$missing" >&2; exit 1; }

# The board-faithful interpreters (host_tools/lwstool/unix32.py): the unix
# port built 32-bit with lws frozen by each board's manifest selection,
# Mbed TLS 3.6 and a compressing deflate, from MPY_SRC (a tree or tarball),
# else ../shared/micropython, else a clone of the pinned commit; cached in
# build/unix32/<board>/. Without the cross compiler (Debian's
# gcc-i686-linux-gnu, libc6-i386) the tests that need them say so and skip.
MPY_SRC ?=
export MPY_SRC
CROSS_DEBS ?= gcc-i686-linux-gnu libc6-i386

cross:
	@command -v i686-linux-gnu-gcc >/dev/null || \
	    { $(APT) install -y -qq $(CROSS_DEBS) >&2 || \
	      { $(APT) update -qq && $(APT) install -y -qq $(CROSS_DEBS); } >&2; } || \
	    echo "make: could not install $(CROSS_DEBS): the 32-bit builds are" \
	         "skipped (as root: apt-get install $(CROSS_DEBS))" >&2

unix32: setup cross
	@if command -v i686-linux-gnu-gcc >/dev/null; then \
	    $(BIN)/python -m lwstool.unix32; fi

run: setup
	$(BIN)/lwstool serve --port $(PORT) --tls-port $(TLS_PORT) \
	    $(if $(DOCROOT),--docroot $(DOCROOT)) \
	    $(if $(HEAP),--heap $(HEAP)) \
	    $(if $(filter-out 0,$(ZIP)),--zip) \
	    $(if $(CONFIG),--config $(call shq,$(CONFIG))) \
	    $(if $(LOGLEVEL),-d $(LOGLEVEL))

client: setup
	$(if $(URL),,$(error make client needs URL=ws://host:port/path))
	$(BIN)/lwstool client $(call shq,$(URL)) \
	    $(if $(PROTOCOL),--protocol $(call shq,$(PROTOCOL))) \
	    $(if $(filter-out 0,$(ECHO)),--echo) \
	    $(if $(filter-out 0,$(DEFLATE)),--deflate) \
	    $(if $(COUNT),--count $(COUNT)) \
	    $(if $(SEND),--send $(call shq,$(SEND))) \
	    $(if $(HEAP),--heap $(HEAP)) \
	    $(if $(LOGLEVEL),-d $(LOGLEVEL))

test: setup debs unix32
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup unix32
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

# tests/test_fuzz.py with 20 times the cases of make test (3000 of each
# kind there); the seed is printed so that a failed run can be replayed
fuzz: setup
	@seed=$${FUZZ_SEED:-$$(date +%s)}; \
	echo "make fuzz: FUZZ_SEED=$$seed FUZZ_CASES=$${FUZZ_CASES:-60000}"; \
	FUZZ_SEED=$$seed FUZZ_CASES=$${FUZZ_CASES:-60000} \
	    $(BIN)/python -m pytest -q -rA tests/test_fuzz.py \
	    -k "fuzz_http_requests or fuzz_ws_frames" $(PYTEST_ARGS) || \
	    { echo "make fuzz: failed with FUZZ_SEED=$$seed"; exit 1; }

clean:
	rm -rf $(VENV) build .pytest_cache
