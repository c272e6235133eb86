#!/usr/bin/env bash
# Property-based fuzzing of the API with schemathesis, against the server's
# own /api/openapi.json, authenticated as a fresh user. Fails on any failed
# check. schemathesis comes from PyPI into .local/venv (git-ignored).
#   FUZZ_EXAMPLES  examples per operation and phase (default 100)
#   FUZZ_SEED      the random seed (default: a new one, printed)
#   FUZZ_SPEC      upstream: the RealWorld spec itself
#                  (../shared/conformance/realworld/openapi.yml, or
#                  CONFORMANCE_DIR's) instead of our own document, with
#                  ignored_auth checked too
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

# shellcheck source=scripts/fresh-server.sh
. scripts/fresh-server.sh
start_fresh_server fuzz

token=$("$venv/bin/python" - "$address" <<'PY'
import json, sys, urllib.request
body = json.dumps({"user": {"username": "fuzzer", "email": "fuzzer@example.org", "password": "fuzzing-password"}}).encode()
request = urllib.request.Request(f"http://{sys.argv[1]}/api/users", data=body, headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request))["user"]["token"])
PY
)

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
schema="http://$address/api/openapi.json"
base=()
if [ "${FUZZ_SPEC:-}" = upstream ]; then
    conformance="${CONFORMANCE_DIR:-$root/../shared/conformance/realworld}"
    [ -f "$conformance/openapi.yml" ] || { echo "fuzz-api: the RealWorld spec is missing: expected $conformance/openapi.yml (set CONFORMANCE_DIR)." >&2; exit 1; }
    schema="$conformance/openapi.yml"
    base=(--url "http://$address/api")
    checks="$checks,ignored_auth"
fi

echo "fuzz-api: $examples examples per operation, seed $seed, against $schema"
# schemathesis keeps its cache (.schemathesis/) in the directory it runs
# from: run it from a git-ignored one so a run leaves the tree clean.
work="$root/.local/fuzz"
mkdir -p "$work"
# DELETE /api/user/session is left out: it would end the session every
# other request authenticates with.
(cd "$work" && "$venv/bin/schemathesis" run "$schema" "${base[@]}" \
    --checks "$checks" \
    --header "Authorization: Token $token" \
    --max-examples "$examples" --seed "$seed" \
    --phases examples,coverage,fuzzing \
    --exclude-path /api/user/session \
    --report junit --report-dir "$root/.local/fuzz-report")

# Our own errors only: actix-http logs requests it cannot parse (a NUL in a
# header, say) at ERROR, and those are the client's, answered with 400.
if grep '"level":"ERROR"' "$server_log" | grep -q '"target":"conduit'; then
    grep '"level":"ERROR"' "$server_log" | grep '"target":"conduit' >&2
    echo "fuzz-api: the server logged errors during the run" >&2
    exit 1
fi
