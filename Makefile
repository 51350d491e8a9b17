# Developer entry points. Each target bootstraps what it needs first
# (a Python 3.11 venv in .venv from requirements.lock, buf from npm).

VENV := .venv/bin
BUF := node_modules/.bin/buf

.PHONY: setup demo up test check lint gen gen-check samples lock

setup:
	@scripts/bootstrap.sh

## The main job: embedded stack + bundled lecture + live progress + transcript,
## and the web console's address (the stack stays up for it until Ctrl-C).
demo: setup
	@$(VENV)/reelscribe demo --stay

up: setup
	@$(VENV)/reelscribe up

## The whole suite: static checks, contract checks, then pytest on the real stack.
test: setup check
	@$(VENV)/pytest -q

check: lint gen-check
	@cd clients/typescript && node_modules/.bin/tsc --noEmit -p .
	@cd clients/web && node_modules/.bin/tsc --noEmit -p .
	@$(BUF) lint
	@$(BUF) format --exit-code > /dev/null || { echo "buf format: run '$(BUF) format -w'"; exit 1; }
	@scripts/buf_breaking.sh

lint:
	@$(VENV)/ruff check .
	@$(VENV)/ruff format --check .
	@$(VENV)/mypy

## Generated code and docs: protobuf/gRPC code, client stubs, the web
## console's bundle (clients/web/dist), and docs/configuration.md from the
## Settings field comments.
gen: setup
	@PATH=$(CURDIR)/.venv/bin:$$PATH scripts/gen_protos.sh
	@$(BUF) generate
	@$(BUF) generate --template clients/web/buf.gen.yaml
	@cd clients/web && node build.mjs
	@$(VENV)/python scripts/gen_config_docs.py

## Generated code and docs are committed; fail if regenerating them changes anything.
GENERATED := reelscribe/v1 clients docs/configuration.md
gen-check: gen
	@git diff --exit-code --stat -- $(GENERATED) \
	  && test -z "$$(git status --porcelain -- $(GENERATED))" \
	  || { echo "generated code or docs are stale: run 'make gen' and commit"; exit 1; }

## Regenerate the spoken samples (needs Debian's espeak-ng).
samples: setup
	@$(VENV)/python scripts/make_samples.py

lock:
	@scripts/lock.sh
