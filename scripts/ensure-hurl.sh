#!/usr/bin/env bash
# Makes sure `hurl` (the RealWorld suite's runner) is on PATH: installs the
# pinned version with cargo when missing, and its build dependencies from
# Debian when running as root; otherwise says in one line what to install.
set -euo pipefail
hurl_version=8.0.1
export PATH="$HOME/.cargo/bin:$PATH"
command -v hurl >/dev/null 2>&1 && exit 0

echo "installing hurl $hurl_version (about 3 minutes)" >&2
if ! dpkg -s libclang-dev libxml2-dev pkg-config >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q libclang-dev libxml2-dev pkg-config >/dev/null \
            || { apt-get update -q >/dev/null && apt-get install -y -q libclang-dev libxml2-dev pkg-config >/dev/null; }
    else
        echo "hurl needs libclang-dev, libxml2-dev and pkg-config: sudo apt-get install libclang-dev libxml2-dev pkg-config" >&2
        exit 1
    fi
fi
cargo install hurl --version "$hurl_version" --locked
