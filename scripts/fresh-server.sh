# Sourced, not run: starts the release binary on a fresh, throwaway
# database of DATABASE_URL's server, for the scripts that test a running
# server from outside (conformance, fuzz-api).
#
#   start_fresh_server LABEL
#
# builds the binary, creates conduit_LABEL_<pid>, serves it on a free port
# and waits for /ready. Then $address is host:port and $server_log the
# server's JSON log. On exit the server stops and the database is dropped.

start_fresh_server() {
    local label="$1" url
    cargo build --release --locked --bin conduit
    fresh_db="conduit_${label}_$$"
    server_log=$(mktemp)
    fresh_server=""
    scripts/dev-db.sh create "$fresh_db" >/dev/null
    trap stop_fresh_server EXIT
    url=$(sed -E "s|/[^/?]+(\?.*)?$|/$fresh_db\1|" <<<"$DATABASE_URL")
    DATABASE_URL="$url" CONDUIT_LISTEN=127.0.0.1:0 CONDUIT_LOG_FORMAT=json RUST_LOG=warn,conduit::startup=info \
        target/release/conduit serve >"$server_log" 2>&1 &
    fresh_server=$!

    address=""
    for _ in $(seq 1 300); do
        address=$(sed -nE 's|.*"message":"listening on http://([^"]+)".*|\1|p' "$server_log" | head -n 1)
        [ -n "$address" ] && break
        kill -0 "$fresh_server" 2>/dev/null || { cat "$server_log" >&2; echo "$label: the server exited before listening" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$address" ] || { cat "$server_log" >&2; echo "$label: the server did not start listening" >&2; exit 1; }
    for _ in $(seq 1 100); do
        CONDUIT_LISTEN="$address" target/release/conduit healthcheck 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$server_log" >&2
    echo "$label: the server never became ready" >&2
    exit 1
}

stop_fresh_server() {
    if [ -n "${fresh_server:-}" ]; then
        kill "$fresh_server" 2>/dev/null && wait "$fresh_server" 2>/dev/null || true
    fi
    scripts/dev-db.sh drop "$fresh_db" >/dev/null || true
    rm -f "$server_log"
}
