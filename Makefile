# natter: `make test` installs what the tests need and runs every check CI runs.

CARGO ?= cargo

.PHONY: test deps fmt-check clippy unit build run

test: deps fmt-check clippy
	$(CARGO) test --all-targets
	$(CARGO) test --doc

# The tests drive the real netcat (netcat-openbsd) and read socket options
# with ss (iproute2). Install whichever is missing.
deps:
	@missing=""; \
	command -v nc >/dev/null 2>&1 || missing="$$missing netcat-openbsd"; \
	command -v ss >/dev/null 2>&1 || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

build:
	$(CARGO) build --release

run:
	$(CARGO) run --release
