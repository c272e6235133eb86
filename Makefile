# Conduit developer workflow. `make` alone lists the targets.
#
# Without DATABASE_URL, targets that need a database start a project-local
# PostgreSQL (scripts/dev-db.sh: data under .local/postgres, port 54329).
# With DATABASE_URL set, they use that server instead.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

DEV_DB := scripts/dev-db.sh
DIESEL_CLI_VERSION := 2.3.14
HURL_VERSION := 8.0.1
CARGO_BIN := $(HOME)/.cargo/bin
export PATH := $(CARGO_BIN):$(PATH)

ifdef DATABASE_URL
  DB_URL := $(DATABASE_URL)
  DB_UP := @true
else
  DB_URL := $(shell $(DEV_DB) url)
  DB_UP := @$(DEV_DB) up
endif
export DATABASE_URL := $(DB_URL)

# Extra flags for `diesel migration run`, e.g. --locked-schema in checks.
DIESEL_MIGRATION_FLAGS ?=

# Every target that builds needs Rust; say so in one sentence when it is missing.
.PHONY: rust
rust:
	@command -v cargo >/dev/null 2>&1 || { echo "Rust (cargo) is missing: install it with rustup (https://rustup.rs), then run this again."; exit 1; }

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-18s %s\n", $$1, $$2 }'

##@ Running
.PHONY: run
run: rust db-up ## Start PostgreSQL if needed, then serve on CONDUIT_LISTEN (127.0.0.1:8080)
	cargo run --locked --bin conduit -- serve

.PHONY: db-up db-down db-psql
db-up: ## Start the local PostgreSQL and create the database (no-op with DATABASE_URL)
	$(DB_UP)

db-down: ## Stop the local PostgreSQL
	@$(DEV_DB) down

db-psql: db-up ## Open psql on the database
	@$(DEV_DB) psql

##@ Migrations
.PHONY: diesel-cli migrate redo migration reset-db schema-check expected-schema
EXPECTED_SCHEMA := src/db/migrations/expected_schema.txt
DESCRIBE_SCHEMA := src/db/migrations/describe_schema.sql
diesel-cli: rust
	@command -v diesel >/dev/null 2>&1 || { \
	  echo "installing diesel_cli $(DIESEL_CLI_VERSION) (postgres only; about 2 minutes)"; \
	  cargo install diesel_cli --version $(DIESEL_CLI_VERSION) --no-default-features --features postgres --locked; }

migrate: db-up diesel-cli ## Apply pending migrations and regenerate src/schema.rs and the expected schema
	diesel migration run $(DIESEL_MIGRATION_FLAGS)
	@$(MAKE) --no-print-directory expected-schema

# What the drift check compares the live schema with: described from a
# fresh database with every migration applied (never from the dev database,
# which may have drifted itself).
expected-schema: db-up diesel-cli ## Regenerate src/db/migrations/expected_schema.txt from a fresh database
	@name="conduit_expected_schema_$$$$"; \
	  $(DEV_DB) create "$$name" >/dev/null; \
	  trap '$(DEV_DB) drop "'"$$name"'" >/dev/null' EXIT; \
	  url="$$(sed -E "s|/[^/?]+(\?.*)?$$|/$$name\1|" <<<"$(DB_URL)")"; \
	  DATABASE_URL="$$url" diesel migration run >/dev/null; \
	  psql "$$url" -X -q -A -t -v ON_ERROR_STOP=1 -f $(DESCRIBE_SCHEMA) > $(EXPECTED_SCHEMA); \
	  echo "wrote $(EXPECTED_SCHEMA)"

redo: db-up diesel-cli ## Revert the newest migration and apply it again
	diesel migration redo $(DIESEL_MIGRATION_FLAGS)

migration: ## Create migrations/NNN_<name>/ with empty up.sql and down.sql: make migration name=add_x
	@[[ "$(name)" =~ ^[a-z0-9_]+$$ ]] || { echo "usage: make migration name=add_something (lowercase letters, digits, _)"; exit 2; }
	@last=$$(ls -d migrations/[0-9][0-9][0-9]_* 2>/dev/null | sed -E 's|migrations/([0-9]+)_.*|\1|' | sort -n | tail -n 1); \
	  dir=$$(printf 'migrations/%03d_%s' $$((10#$${last:-0} + 1)) "$(name)"); \
	  mkdir -p "$$dir" && : > "$$dir/up.sql" && : > "$$dir/down.sql" && echo "created $$dir/{up,down}.sql"

reset-db: db-up diesel-cli ## Drop the database (even with clients connected), recreate it, migrate, regenerate the schema
	@$(DEV_DB) reset
	diesel migration run $(DIESEL_MIGRATION_FLAGS)

schema-check: db-up diesel-cli ## Fail when src/schema.rs or the expected schema differs from what the migrations produce
	@name="conduit_schema_check_$$$$"; \
	  $(DEV_DB) create "$$name" >/dev/null; \
	  trap '$(DEV_DB) drop "'"$$name"'" >/dev/null' EXIT; \
	  url="$$(sed -E "s|/[^/?]+(\?.*)?$$|/$$name\1|" <<<"$(DB_URL)")"; \
	  DATABASE_URL="$$url" diesel migration run --locked-schema \
	  && echo "src/schema.rs matches the migrations" \
	  && psql "$$url" -X -q -A -t -v ON_ERROR_STOP=1 -f $(DESCRIBE_SCHEMA) | diff -u $(EXPECTED_SCHEMA) - \
	  && echo "$(EXPECTED_SCHEMA) matches the migrations" \
	  || { echo "run \`make expected-schema\` and commit $(EXPECTED_SCHEMA)"; exit 1; }

##@ Checks
.PHONY: test lint conformance fuzz-api fuzz-spec
test: rust db-up diesel-cli ## Run every test against a real PostgreSQL
	@$(DEV_DB) sweep conduit_test_ >/dev/null
	cargo test --locked --all-targets

lint: rust cargo-deny python3 ## rustfmt, clippy (warnings as errors), no import cycles, no source file over about 300 lines, cargo-deny, squawk over migrations/, hadolint, compose config, the docs' links, docs/configuration.md
	cargo fmt --all -- --check
	scripts/check-module-cycles.py
	scripts/check-file-lengths.py
	cargo clippy --locked --all-targets --all-features -- -D warnings
	cargo deny --locked check --hide-inclusion-graph bans licenses sources
	scripts/lint-migrations.sh
	scripts/docker/lint.sh
	scripts/check-links.py
	@$(MAKE) --no-print-directory docs-check

# docs/configuration.md is printed by the binary from its clap definitions
# (src/commands/settings_reference.rs), so it cannot drift from the code.
CONFIGURATION_MD := docs/configuration.md
.PHONY: docs docs-check
docs: rust ## Regenerate docs/configuration.md from the command line's definitions
	@out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	  cargo run --locked --quiet --bin conduit -- settings-reference > "$$out"; \
	  cp "$$out" $(CONFIGURATION_MD); echo "wrote $(CONFIGURATION_MD)"

docs-check: rust ## Fail when docs/configuration.md differs from what `make docs` would write
	@out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	  cargo run --locked --quiet --bin conduit -- settings-reference > "$$out"; \
	  diff -u $(CONFIGURATION_MD) "$$out" >/dev/null \
	  || { echo "$(CONFIGURATION_MD) is stale: run \`make docs\` and commit it."; exit 1; }

# Only the offline checks run (no advisory database download); deny.toml
# says what is allowed and why. Its release profile (fat LTO, one codegen
# unit) would take most of CI's first run to build; a plain one is enough.
CARGO_DENY_VERSION := 0.18.9
.PHONY: cargo-deny
cargo-deny: rust
	@cargo deny --version 2>/dev/null | grep -q "$(CARGO_DENY_VERSION)" || { \
	  echo "installing cargo-deny $(CARGO_DENY_VERSION) (a few minutes)"; \
	  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
	  cargo install cargo-deny --version $(CARGO_DENY_VERSION) --locked; }

conformance: rust db-up ## Run the public RealWorld Hurl suite against the release binary on a fresh database
	scripts/conformance.sh

# The previous release (the commit before the newest migration was added)
# against this one's schema; its binary is cached under .local/compat/.
.PHONY: compat-test
compat-test: rust db-up ## Run the previous release on this release's schema: the RealWorld suite and reads of data written by this one
	scripts/compat-test.sh

fuzz-api: rust db-up ## Fuzz the API with schemathesis against its own OpenAPI document (FUZZ_EXAMPLES=100)
	scripts/fuzz-api.sh

fuzz-spec: rust db-up ## The same against the upstream RealWorld spec, with ignored_auth checked too
	FUZZ_SPEC=upstream scripts/fuzz-api.sh

.PHONY: bench bench-quick bench-docs
# The benchmarks run their own PostgreSQL cluster (port 54339, durable
# settings), not the development one; results go to target/bench/.
bench: rust python3 ## Benchmarks on 100,000 articles: boot, migrations, endpoints vs pgbench, quiet and under stress-ng, memory, logins (BENCH_SCALE=1)
	scripts/bench/bench.py

bench-quick: rust python3 ## The same benchmarks on a small dataset, in about three minutes once built
	BENCH_SCALE=$${BENCH_SCALE:-0.05} BENCH_SECONDS=$${BENCH_SECONDS:-4} BENCH_WARMUP_SECONDS=$${BENCH_WARMUP_SECONDS:-1} scripts/bench/bench.py

bench-docs: rust python3 ## Run `make bench` and put its tables into docs/benchmarks.md
	BENCH_WRITE_DOCS=1 scripts/bench/bench.py

.PHONY: python3
python3:
	@command -v python3 >/dev/null 2>&1 || { echo "python3 is missing (the benchmark driver needs it): install it (Debian/Ubuntu: apt-get install python3)."; exit 1; }

##@ Containers
# `docker compose` (v2) where it exists, else the v1 `docker-compose`.
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: docker-clean-start docker-base-images docker-test
docker-clean-start: ## Rebuild the compose stack from nothing: down -v, then up (LOCAL_BASE_IMAGES=1: no registry needed)
	@if [ "$(LOCAL_BASE_IMAGES)" = 1 ]; then images=$$(scripts/docker/base-images.sh) || exit 1; export $$images; fi; \
	  $(COMPOSE) down -v && $(COMPOSE) up --build

docker-base-images: ## Make local stand-ins for the rust, debian and postgres base images from Debian's packages
	@scripts/docker/base-images.sh

docker-test: python3 ## Build the image and drive the compose stack through its scenarios, in real containers
	scripts/docker/docker-test.py

##@ Topology
.PHONY: topology-test
# Its own PostgreSQL (.local/topology-postgres) and processes on
# 127.0.0.1:31130-31159, below the kernel's ephemeral ports (TOPOLOGY_PORT_BASE
# moves them); results go to target/topology/. Installs haproxy, pgbouncer and wrk when root and missing.
topology-test: rust python3 ## Three replicas behind HAProxy under wrk: SIGTERM, SIGKILL, a rolling upgrade with migrations, PgBouncer
	scripts/topology/topology-test.py
