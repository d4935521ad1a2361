# natter: `make test` installs what the tests need and runs every check CI runs.

CARGO ?= cargo

.PHONY: test deps fmt-check clippy unit build run

test: deps fmt-check clippy
	$(CARGO) test --all-targets
	$(CARGO) test --doc

# The tests drive the real netcat (netcat-openbsd). Install it when missing.
deps:
	@if ! command -v nc >/dev/null 2>&1; then \
		echo "installing netcat-openbsd"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq netcat-openbsd; \
	fi

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

build:
	$(CARGO) build --release

run:
	$(CARGO) run --release
