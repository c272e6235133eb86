#!/usr/bin/env bash
# make compat-test: the previous release must keep working on the schema of
# this one, since replicas roll one at a time and for a while the previous
# release serves on the new schema.
#
# The previous release is the commit before the one that added the newest
# migration directory, along the first-parent history (the oldest commit
# `git log --first-parent --diff-filter=A` shows for migrations/<newest>/up.sql,
# then its first parent): a migration merged from a branch counts from
# its merge, so the previous release is what main held before it, never a
# half-done commit of the branch. While the newest migration is not
# committed yet, it is HEAD. A clone without that history fails with one line.
#
# Then: build the previous binary (debug, cached in .local/compat/<commit>/
# with its own CARGO_TARGET_DIR, .local/compat/target), migrate a fresh
# database with the current binary (debug, as `make test` builds it), write
# data through the current API, start the previous binary on that database
# with CONDUIT_MIGRATE_ON_START=false, run the RealWorld Hurl suite and the
# reads of that data against it. Migrations marked `-- conduit:contract`
# are left out of the schema (they wait for older releases to disconnect,
# docs/migrations.md).
#   DATABASE_URL     the server to create the throwaway database on
#   CONFORMANCE_DIR  the suite (default: ../shared/conformance/realworld)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
suite="${CONFORMANCE_DIR:-$root/../shared/conformance/realworld}"
export PATH="$HOME/.cargo/bin:$PATH"
cache="$root/.local/compat"
contract_marker='-- conduit:contract'

die() { echo "compat-test: $*" >&2; exit 1; }

[ -d "$suite/hurl" ] || die "no Hurl suite at $suite/hurl: put the shared folder beside the checkout or set CONFORMANCE_DIR."
git rev-parse --git-dir >/dev/null 2>&1 || die "not a git checkout: the previous release is found in the history."

newest=$(ls -d migrations/[0-9]*_*/ | sed -e 's|/$||' -e 's|^migrations/||' | sort | tail -n 1)
added=$(git log --first-parent --diff-filter=A --format=%H -- "migrations/$newest/up.sql" | tail -n 1)
if [ -z "$added" ]; then
    previous=$(git rev-parse HEAD)
else
    previous=$(git rev-parse --verify --quiet "$added^1") \
        || die "no previous release: the history of this clone stops at $(git rev-parse --short "$added") (a shallow clone?), so the commit before $newest was added is missing; run git fetch --unshallow."
fi
short=$(git rev-parse --short "$previous")
mapfile -t before < <(git ls-tree --name-only "$previous" migrations/ | sed 's|^migrations/||')
new=()
contract=()
for dir in migrations/[0-9]*_*/; do
    name=$(basename "$dir")
    printf '%s\n' "${before[@]}" | grep -qxF "$name" && continue
    if [ "$(head -n 1 "$dir/up.sql" | tr -d '\r' | sed 's/[[:space:]]*$//')" = "$contract_marker" ]; then
        contract+=("$name")
    else
        new+=("$name")
    fi
done
echo "compat-test: previous release $short (before $newest); migrations since: ${new[*]:-none}${contract:+; contract, exempt: ${contract[*]}}"

scripts/ensure-hurl.sh

# The current binary first: its compiled dependencies seed the previous
# release's build directory, which then compiles little but the crate.
cargo build --locked --bin conduit

bin="$cache/$previous/conduit"
if [ ! -x "$bin" ]; then
    if [ ! -d "$cache/target/debug" ] && [ -d target/debug/deps ]; then
        # Only a cache: a build running beside this one may remove a file
        # mid-copy, and cargo then compiles what is missing.
        mkdir -p "$cache/target"
        cp -a target/debug "$cache/target/debug" 2>/dev/null \
            || echo "compat-test: the build directory was seeded in part (a build ran beside it)"
    fi
    echo "compat-test: building the previous release $short (debug; cached in .local/compat/$previous)"
    src="$cache/$previous/src"
    rm -rf "$src" && mkdir -p "$src"
    git archive "$previous" | tar -x -C "$src"
    # From its own directory, so its own rust-toolchain.toml applies.
    (cd "$src" && CARGO_TARGET_DIR="$cache/target" cargo build --locked --bin conduit)
    cp "$cache/target/debug/conduit" "$bin.tmp" && mv "$bin.tmp" "$bin"
    rm -rf "$src"
fi

db="conduit_compat_$$"
work=$(mktemp -d)
server=""
stop_server() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; fi
    server=""
}
cleanup() { stop_server; scripts/dev-db.sh drop "$db" >/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
scripts/dev-db.sh create "$db" >/dev/null
url=$(sed -E "s|/[^/?]+(\?.*)?$|/$db\1|" <<<"$DATABASE_URL")

# The schema the previous release meets during a roll: every migration
# but the contract ones.
args=()
if [ "${#contract[@]}" -gt 0 ]; then
    mkdir -p "$work/migrations"
    for dir in migrations/[0-9]*_*/; do
        name=$(basename "$dir")
        printf '%s\n' "${contract[@]}" | grep -qxF "$name" || cp -r "$dir" "$work/migrations/$name"
    done
    args=(--migrations-dir "$work/migrations")
fi

# start_server LOG BINARY [ARGS...]: serves on a free port; sets $address.
start_server() {
    local log="$1"; shift
    DATABASE_URL="$url" CONDUIT_LISTEN=127.0.0.1:0 CONDUIT_LOG_FORMAT=json RUST_LOG=warn,conduit::startup=info \
        "$@" >"$log" 2>&1 &
    server=$!
    address=""
    for _ in $(seq 1 600); do
        address=$(sed -nE 's|.*"message":"listening on http://([^"]+)".*|\1|p' "$log" | head -n 1)
        if [ -n "$address" ] && curl -fsS "http://$address/ready" >/dev/null 2>&1; then return 0; fi
        kill -0 "$server" 2>/dev/null || { cat "$log" >&2; return 1; }
        sleep 0.1
    done
    cat "$log" >&2
    return 1
}

uid="$(date +%s)$$"
hurl_run() { hurl --test --jobs 1 --variable "host=http://$address" --variable "uid=$uid" "$@"; }

start_server "$work/current.log" target/debug/conduit serve "${args[@]}" \
    || die "the current release did not start on a fresh database."
hurl_run tests/fixtures/compat/write.hurl || die "writing through the current release failed."
stop_server

failed() {
    die "the previous release ($short) fails on the schema of ${new[*]:-its own migrations} (the newest: $newest): make the change backward compatible (expand now; drop or rename in a later release, in a migration marked $contract_marker; docs/migrations.md)."
}
start_server "$work/previous.log" env CONDUIT_MIGRATE_ON_START=false "$bin" serve || failed
hurl_run "$suite"/hurl/*.hurl tests/fixtures/compat/read.hurl || { tail -n 20 "$work/previous.log" >&2; failed; }
echo "compat-test: the previous release ($short) passes the RealWorld suite and reads the current release's data on the schema of ${new[*]:-its own migrations}"
