#!/usr/bin/env bash
# Runs the public RealWorld Hurl suite (13 files, 154 requests) against the
# release binary on a fresh database, and fails on any failed request.
#   DATABASE_URL     the server to create the throwaway database on
#   CONFORMANCE_DIR  the suite (default: ../shared/conformance/realworld)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
suite="${CONFORMANCE_DIR:-$root/../shared/conformance/realworld}"
export PATH="$HOME/.cargo/bin:$PATH"

[ -d "$suite/hurl" ] || { echo "conformance: no Hurl suite at $suite/hurl: put the shared folder beside the checkout or set CONFORMANCE_DIR." >&2; exit 1; }

scripts/ensure-hurl.sh

# shellcheck source=scripts/fresh-server.sh
. scripts/fresh-server.sh
start_fresh_server conformance

uid="$(date +%s)$$"
hurl --test --jobs 1 --variable "host=http://$address" --variable "uid=$uid" "$suite"/hurl/*.hurl
