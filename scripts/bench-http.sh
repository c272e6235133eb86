#!/usr/bin/env bash
# Throughput and latency of the release binary under load from wrk, for
# both pool recycling methods (CONDUIT_DB_RECYCLE=verified|fast): a page of
# 20 articles with their authors, tags and counts, signed in, and one
# article. Loopback only; each run is bounded by BENCH_SECONDS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds="${BENCH_SECONDS:-10}"
command -v wrk >/dev/null || {
    if [ "$(id -u)" = 0 ]; then apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
    else echo "bench: wrk is missing: sudo apt-get install wrk" >&2; exit 1; fi
}
# shellcheck source=scripts/fresh-server.sh
. scripts/fresh-server.sh

post() { curl -sf -X POST "http://$address$1" -H 'Content-Type: application/json' ${3:+-H "Authorization: Token $3"} -d "$2"; }

for recycle in verified fast; do
    export CONDUIT_DB_RECYCLE="$recycle"
    start_fresh_server "bench_$recycle" >/dev/null
    token=$(post /api/users '{"user":{"username":"bench","email":"bench@example.org","password":"bench-password"}}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
    slug=""
    for i in $(seq 1 20); do
        slug=$(post /api/articles "{\"article\":{\"title\":\"Bench $i\",\"description\":\"d\",\"body\":\"b\",\"tagList\":[\"t$i\",\"bench\"]}}" "$token" | sed -E 's/.*"slug":"([^"]+)".*/\1/')
        post "/api/articles/$slug/favorite" '{}' "$token" >/dev/null
    done
    for path in "/api/articles?limit=20" "/api/articles/$slug"; do
        result=$(wrk -t2 -c16 -d"${seconds}s" --latency -H "Authorization: Token $token" "http://$address$path")
        rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$result")
        p50=$(awk '$1 == "50%" { print $2 }' <<<"$result")
        p99=$(awk '$1 == "99%" { print $2 }' <<<"$result")
        errors=$(grep -E "Non-2xx|Socket errors" <<<"$result" || true)
        printf 'recycle=%-8s GET %-28s %8s req/s  p50 %-8s p99 %-8s %s\n' "$recycle" "${path/$slug/\{slug\}}" "$rps" "$p50" "$p99" "$errors"
    done
    stop_fresh_server
    trap - EXIT
done
