#!/usr/bin/env bash
# Boot time of the release binary, from exec to the first 200 from /ready:
# on an empty database (migrations applied) and on an up-to-date one.
# Prints every run and the median of each.
#   RUNS (default 7)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs="${RUNS:-7}"
cargo build --release --locked --bin conduit >/dev/null 2>&1 || cargo build --release --locked --bin conduit
bin=target/release/conduit

ms_now() { date +%s%3N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Boots once on $1 and prints the milliseconds until /ready answered 200.
boot_ms() {
    local url="$1" log started address="" pid
    log=$(mktemp)
    started=$(ms_now)
    DATABASE_URL="$url" CONDUIT_LISTEN=127.0.0.1:0 CONDUIT_LOG_FORMAT=json RUST_LOG=info "$bin" serve >"$log" 2>&1 &
    pid=$!
    while :; do
        [ -z "$address" ] && address=$(sed -nE 's|.*"message":"listening on http://([^"]+)".*|\1|p' "$log" | head -n 1)
        if [ -n "$address" ] && CONDUIT_LISTEN="$address" "$bin" healthcheck 2>/dev/null; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.005
    done
    echo $(( $(ms_now) - started ))
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -f "$log"
}

db="conduit_bench_$$"
url=$(sed -E "s|/[^/?]+(\?.*)?$|/$db\1|" <<<"$DATABASE_URL")
trap 'scripts/dev-db.sh drop "$db" >/dev/null' EXIT
empty=(); current=()
for _ in $(seq 1 "$runs"); do
    scripts/dev-db.sh drop "$db" >/dev/null; scripts/dev-db.sh create "$db" >/dev/null
    empty+=("$(boot_ms "$url")")
    current+=("$(boot_ms "$url")")
done
echo "boot to /ready, empty database (migrates 001, 002): ${empty[*]} ms; median $(printf '%s\n' "${empty[@]}" | median) ms"
echo "boot to /ready, up-to-date database:                ${current[*]} ms; median $(printf '%s\n' "${current[@]}" | median) ms"
