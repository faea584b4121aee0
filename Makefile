# Uses the deno on PATH, else installs Deno 2.9.x from the npm package into .tools/.
DENO_VERSION := 2.9.6
DENO := $(shell command -v deno 2>/dev/null || echo .tools/node_modules/deno/deno)

.PHONY: dev test check bundle bench bench-quick deno clean

dev: $(DENO)
	$(DENO) task dev

test: $(DENO)
	$(DENO) task test

check: $(DENO)
	$(DENO) task check

bundle: $(DENO)
	$(DENO) task bundle

deno: $(DENO)

.tools/node_modules/deno/deno:
	npm install --prefix .tools --no-save --no-audit --no-fund deno@$(DENO_VERSION)
	@# npm 11 may skip the postinstall script; the platform binary is the fallback.
	@test -x $@ || cp .tools/node_modules/@deno/linux-x64-glibc/deno $@ || cp .tools/node_modules/@deno/linux-arm64-glibc/deno $@
	$@ --version

clean:
	rm -rf dist .tools
