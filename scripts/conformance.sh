#!/usr/bin/env bash
# Runs the public RealWorld Hurl suite (13 files, 154 requests) against the
# release binary on a fresh database, and fails on any failed request.
#   DATABASE_URL     the server to create the throwaway database on
#   CONFORMANCE_DIR  the suite (default: ../shared/conformance/realworld)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
suite="${CONFORMANCE_DIR:-$root/../shared/conformance/realworld}"
hurl_version=8.0.1
export PATH="$HOME/.cargo/bin:$PATH"

[ -d "$suite/hurl" ] || { echo "conformance: no Hurl suite at $suite/hurl: put the shared folder beside the checkout or set CONFORMANCE_DIR." >&2; exit 1; }

if ! command -v hurl >/dev/null 2>&1; then
    echo "conformance: installing hurl $hurl_version (about 3 minutes)" >&2
    if ! { dpkg -s libclang-dev libxml2-dev pkg-config >/dev/null 2>&1; }; then
        if [ "$(id -u)" = 0 ]; then
            apt-get install -y -q libclang-dev libxml2-dev pkg-config >/dev/null \
                || { apt-get update -q >/dev/null && apt-get install -y -q libclang-dev libxml2-dev pkg-config >/dev/null; }
        else
            echo "conformance: hurl needs libclang-dev, libxml2-dev and pkg-config: sudo apt-get install libclang-dev libxml2-dev pkg-config" >&2
            exit 1
        fi
    fi
    cargo install hurl --version "$hurl_version" --locked
fi

# shellcheck source=scripts/fresh-server.sh
. scripts/fresh-server.sh
start_fresh_server conformance

uid="$(date +%s)$$"
hurl --test --jobs 1 --variable "host=http://$address" --variable "uid=$uid" "$suite"/hurl/*.hurl
