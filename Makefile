# Uses the deno on PATH, else installs Deno 2.9.x from the npm package into .tools/.
DENO_VERSION := 2.9.6
DENO := $(shell command -v deno 2>/dev/null || echo .tools/node_modules/deno/deno)

.PHONY: dev test check bundle release bench bench-quick deno clean

dev: $(DENO)
	$(DENO) task dev

test: $(DENO)
	$(DENO) task test

check: $(DENO)
	$(DENO) task check

# dist/remise.js, with the git commit embedded (see scripts/bundle.ts).
bundle: $(DENO)
	$(DENO) run -A scripts/bundle.ts

# dist/remise-VERSION-TARGET for Linux and macOS, and dist/SHA256SUMS (needs network: denort).
release: $(DENO)
	$(DENO) run -A scripts/release.ts

# Measures remise against this machine's limits (a few minutes; see bench/README.md).
bench: $(DENO)
	$(DENO) task bench

# The same in about 30 s, with small sizes and short phases.
bench-quick: $(DENO)
	$(DENO) task bench-quick

deno: $(DENO)

.tools/node_modules/deno/deno:
	npm install --prefix .tools --no-save --no-audit --no-fund deno@$(DENO_VERSION)
	@# npm 11 may skip the postinstall script; the platform binary is the fallback.
	@test -x $@ || cp .tools/node_modules/@deno/linux-x64-glibc/deno $@ || cp .tools/node_modules/@deno/linux-arm64-glibc/deno $@
	$@ --version

clean:
	rm -rf dist .tools
