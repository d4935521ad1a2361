# natter: `make test` installs what the tests need and runs every check CI runs.

CARGO ?= cargo
SHELL := /bin/bash

.PHONY: test deps browser-deps check-install browser-test browser-run web-unit fmt-check clippy build run bench autobahn autobahn-tls autobahn-both soak fuzz compare-threads bench-compare

# Every unit and integration test, the examples' tests and a short smoke run
# of each benchmark; then one closing line that sums up every test binary.
test: deps browser-deps fmt-check clippy web-unit
	@mkdir -p target
	set -o pipefail; $(CARGO) test --all-targets 2>&1 | tee target/test.log
	$(MAKE) --no-print-directory autobahn-both
	$(MAKE) --no-print-directory browser-run
	@awk '/^test result:/ { p += $$4; f += $$6 } /^autobahn: [0-9]+ passed/ { p += $$2; f += $$4 } \
		/^# pass [0-9]+$$/ { p += $$3 } /^# fail [0-9]+$$/ { f += $$3 } \
		END { printf "tests: %d passed, %d failed\n", p, f; if (p == 0 || f > 0) exit 1 }' \
		target/test.log target/autobahn.log target/autobahn-tls.log target/web-unit.log target/browser.log

# The chat page's pure modules (web/util.js, protocol.js, room.js,
# session.js: no DOM, no window) under Node's own test runner, with a fake
# WebSocket, clock and storage (tests/web): no browser and no npm install.
web-unit:
	@command -v node >/dev/null || { echo "web-unit: needs Node.js >= 20 on PATH" >&2; exit 1; }
	@mkdir -p target
	set -o pipefail; node --test --test-reporter=tap tests/web/*.test.mjs 2>&1 | tee target/web-unit.log

# The browser tests (tests/browser) drive Debian's Chromium with
# playwright-core from npm (which downloads no browser); install what is missing.
# Node.js and npm come with the machine; browser-run's `node --test` options
# need Node.js >= 20.11 (Debian 12's own nodejs, 18.20, has no --test-timeout).
browser-deps:
	@scripts/install-deps.sh chromium=chromium
	@command -v node >/dev/null && command -v npm >/dev/null \
		|| { echo "browser-deps: needs Node.js >= 20.11 and npm on PATH" >&2; exit 1; }
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 11) ? 0 : 1)' \
		|| { echo "browser-deps: needs Node.js >= 20.11 (node --test-timeout), found $$(node --version)" >&2; exit 1; }
	cd tests/browser && npm ci --no-audit --no-fund

# The chat page end to end: target/debug/natter (web/ embedded) driven in
# headless Chromium; screenshots in target/screenshots/.
browser-test: browser-deps browser-run

browser-run:
	$(CARGO) build
	@mkdir -p target
	set -o pipefail; cd tests/browser && node --test --test-concurrency=1 --test-timeout=90000 \
		--test-reporter=tap *.test.js 2>&1 | tee ../../target/browser.log

# The Autobahn TestSuite (see `autobahn` below) over wss:// (natter
# --tls-self-signed); its report in target/autobahn-tls-report.
autobahn-tls:
	AUTOBAHN_TLS=1 scripts/autobahn.sh

# Both at once, as `make test` runs them: ws:// and wss:// on two ports,
# two report and run directories (the setup they share is done under a
# lock in the script), each log printed when both are done:
# target/autobahn.log and target/autobahn-tls.log.
autobahn-both:
	@mkdir -p target
	@echo "autobahn: ws:// and wss:// at once (target/autobahn.log, target/autobahn-tls.log)"
	@AUTOBAHN_TIMEOUT=600 scripts/autobahn.sh >target/autobahn.log 2>&1 & plain=$$!; \
	AUTOBAHN_TIMEOUT=600 AUTOBAHN_TLS=1 scripts/autobahn.sh >target/autobahn-tls.log 2>&1 & tls=$$!; \
	rc=0; wait $$plain || rc=1; wait $$tls || rc=1; \
	echo "--- ws:// (target/autobahn.log)"; cat target/autobahn.log; \
	echo "--- wss:// (target/autobahn-tls.log)"; cat target/autobahn-tls.log; \
	exit $$rc

# The Autobahn TestSuite, cases 1-7 and 9, against the WebSocket codec
# (`--ws-echo`). The first run fetches Python 2.7 from Debian into target/.
autobahn:
	scripts/autobahn.sh

# The tests drive the real netcat (netcat-openbsd), openssl s_client and
# curl (the TLS tests) and start their own redis-server processes (Debian's
# redis-server package; a Redis service it may start is not used), read socket
# options with ss (iproute2) and check deploy/natter.service with
# systemd-analyze (systemd). Install whichever is missing (scripts/install-deps.sh: as
# root or through sudo, apt never prompts).
deps:
	@scripts/install-deps.sh nc=netcat-openbsd nc.openbsd=netcat-openbsd ss=iproute2 \
		openssl=openssl curl=curl redis-server=redis-server \
		systemd-analyze=systemd

# The install steps above and scripts/autobahn.sh's setup, run on a fresh
# Debian 12 (debootstrap, in target/check-install/) as root and as a user with
# sudo. Needs root; a few minutes; downloads Chromium twice. Not in `make test`.
check-install:
	scripts/check-install.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

build:
	$(CARGO) build --release

run:
	$(CARGO) run --release

bench:
	$(CARGO) bench

# Bounded soak: 400 line and WebSocket clients for 3 minutes on loopback,
# joining, chatting, flooding, vanishing, resuming, stalling; checks every
# message, one thread, and that RSS does not grow without bound.
# Not part of `make test`.
SOAK_ARGS ?= --clients 400 --seconds 180
soak:
	$(CARGO) run --release --example soak -- $(SOAK_ARGS)

# Coverage-guided fuzzing of the codecs (cargo-fuzz on stable, no
# sanitizer: the crate has no unsafe code). New inputs go to
# fuzz/target/corpus/; the committed corpus is replayed by
# tests/fuzz_regressions.rs in `make test`.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= line http ws json sniff tls resp
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/target/corpus/$$t; \
		dict=; [ -f fuzz/dict/$$t.dict ] && dict=-dict=fuzz/dict/$$t.dict; \
		echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
		$(CARGO) fuzz run -s none $$t fuzz/target/corpus/$$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=12000 $$dict 2>&1 \
			| grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED)|^INFO:'; \
		test $${PIPESTATUS[0]} -eq 0; \
	done

# natter against examples/threaded.rs (a thread per client) at 100, 1000 and
# 5000 clients, and with one reader stalled: the figures of
# docs/COMPARISON.md. About 4 minutes.
compare-threads:
	$(CARGO) build --release --bin natter --example threaded --example compare_threads
	@mkdir -p target
	target/release/examples/compare_threads --out target/compare-threads.md

# natter against a plain broadcast server on Node's ws package
# (bench/ws-server.js, ws installed into bench/node_modules), the same
# scenarios in one session, printing natter/ws ratios.
bench-compare:
	cd bench && npm ci --no-audit --no-fund
	$(CARGO) build --release --bin natter --example bench_compare
	target/release/examples/bench_compare
