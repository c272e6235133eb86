#!/usr/bin/env bash
# Property-based fuzzing of the API with schemathesis, against the server's
# own /api/openapi.json, authenticated as a fresh user. Fails on any failed
# check. schemathesis comes from PyPI into .local/venv (git-ignored).
#   FUZZ_EXAMPLES  examples per operation and phase (default 100)
#   FUZZ_SEED      the random seed (default: a new one, printed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
schemathesis_version=4.32.5
venv="$root/.local/venv"
examples="${FUZZ_EXAMPLES:-100}"
seed="${FUZZ_SEED:-$RANDOM}"

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$schemathesis_version"; then
    command -v python3 >/dev/null || { echo "fuzz-api: python3 is missing: install it (apt-get install python3 python3-venv)." >&2; exit 1; }
    python3 -m venv "$venv" || { echo "fuzz-api: could not create a virtualenv: install python3-venv." >&2; exit 1; }
    "$venv/bin/pip" install --quiet "schemathesis==$schemathesis_version"
fi

cargo build --release --locked --bin conduit

db="conduit_fuzz_$$"
log=$(mktemp)
scripts/dev-db.sh create "$db" >/dev/null
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    scripts/dev-db.sh drop "$db" >/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

url=$(sed -E "s|/[^/?]+(\?.*)?$|/$db\1|" <<<"$DATABASE_URL")
DATABASE_URL="$url" CONDUIT_LISTEN=127.0.0.1:0 CONDUIT_LOG_FORMAT=json RUST_LOG=warn,conduit::startup=info \
    target/release/conduit serve >"$log" 2>&1 &
server=$!
address=""
for _ in $(seq 1 300); do
    address=$(sed -nE 's|.*"message":"listening on http://([^"]+)".*|\1|p' "$log" | head -n 1)
    [ -n "$address" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$address" ] || { cat "$log" >&2; echo "fuzz-api: the server did not start listening" >&2; exit 1; }

token=$("$venv/bin/python" - "$address" <<'PY'
import json, sys, urllib.request
body = json.dumps({"user": {"username": "fuzzer", "email": "fuzzer@example.org", "password": "fuzzing-password"}}).encode()
request = urllib.request.Request(f"http://{sys.argv[1]}/api/users", data=body, headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request))["user"]["token"])
PY
)

echo "fuzz-api: $examples examples per operation, seed $seed"
# DELETE /api/user/session is left out: it would end the session every
# other request authenticates with.
"$venv/bin/schemathesis" run "http://$address/api/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --header "Authorization: Token $token" \
    --max-examples "$examples" --seed "$seed" \
    --phases examples,coverage,fuzzing \
    --exclude-path /api/user/session \
    --report junit --report-dir "$root/.local/fuzz-report"

# Our own errors only: actix-http logs requests it cannot parse (a NUL in a
# header, say) at ERROR, and those are the client's, answered with 400.
if grep '"level":"ERROR"' "$log" | grep -q '"target":"conduit'; then
    grep '"level":"ERROR"' "$log" | grep '"target":"conduit' >&2
    echo "fuzz-api: the server logged errors during the run" >&2
    exit 1
fi
