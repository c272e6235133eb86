#!/usr/bin/env bash
# Local stand-ins for the base images of the Dockerfile and compose.yaml,
# made from Debian's packages, for machines that reach Debian's archive and
# crates.io but no container registry. Users keep the official images; only
# `make docker-test` builds on these.
#
#   base-images.sh        make the stand-ins that are missing or out of date,
#                         then print KEY=IMAGE lines for the compose build
#
#   conduit-local/debian:bookworm-slim      debootstrap --variant=minbase, trimmed like debian:bookworm-slim
#   conduit-local/rust:VERSION-slim-bookworm   that + gcc + the Rust toolchain rust-toolchain.toml pins
#   conduit-local/postgres:15-bookworm      that + Debian's postgresql-15 + an entrypoint
#                                           that honours the official image's variables
#
# Each is cached by tag and made again only when its definition changes.
# DEBIAN_MIRROR overrides the archive debootstrap reads.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# From the checkout, so that rustc is the toolchain rust-toolchain.toml pins.
cd "$here/../.."
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm

say() { echo "base-images: $*" >&2; }
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT
die() { say "$*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker is missing: install Docker Engine (Debian: apt-get install docker.io), then run this again."
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable: start it (systemctl start docker) or check that you may use its socket."

rust_version=$(rustc --version 2>/dev/null | awk '{print $2}') \
    || die "rustc is missing: the Rust build image copies this machine's toolchain; install Rust with rustup."
# Builds in a container reach crates.io through this machine's network, and
# so must trust what this machine trusts (an egress proxy may sign for it).
ca_bundle="${CONDUIT_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -r "$ca_bundle" ] || die "$ca_bundle is missing: install ca-certificates, or set CONDUIT_CA_BUNDLE to the CA bundle this machine trusts."

# Each image is labelled with a digest of what defines it (and of its base):
# a changed definition makes it again, an unchanged one is reused.
digest_of() { cat "$@" | sha256sum | cut -c1-16; }
debian_digest=$(digest_of "$here/debian-root.sh")
rust_digest=$( { echo "$debian_digest $rust_version"; cat "$here/rust.Dockerfile" "$ca_bundle"; } | digest_of)
postgres_digest=$( { echo "$debian_digest"; cat "$here/postgres.Dockerfile" "$here/postgres-entrypoint.sh"; } | digest_of)

debian_image="conduit-local/debian:$suite-slim"
rust_image="conduit-local/rust:$rust_version-slim-$suite"
postgres_image="conduit-local/postgres:15-$suite"

up_to_date() { # IMAGE DIGEST
    [ "$(docker image inspect --format '{{ index .Config.Labels "conduit.stand-in" }}' "$1" 2>/dev/null)" = "$2" ]
}

build() { # IMAGE DIGEST CONTEXT
    local log
    log=$(mktemp /var/tmp/conduit-build.XXXXXX.log)
    scratch+=("$log")
    docker build --build-arg "BASE=$debian_image" --label "conduit.stand-in=$2" -t "$1" "$3" >"$log" 2>&1 \
        || { tail -n 30 "$log" >&2; die "building $1 failed (log above)."; }
}

make_debian() {
    [ "$(id -u)" = 0 ] || die "making $debian_image needs root (debootstrap); run this once as root, or build on the official images where a registry is reachable."
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap from Debian's packages"
        apt-get install -y -qq debootstrap >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null && apt-get install -y -qq debootstrap >/dev/null; } \
            || die "debootstrap could not be installed (apt-get install debootstrap)."
    fi
    local root
    root=$(mktemp -d /var/tmp/conduit-debian-root.XXXXXX)
    scratch+=("$root")
    say "debootstrap $suite (minbase) from $mirror"
    "$here/debian-root.sh" "$root" "$suite" "$mirror"
    say "importing $debian_image"
    tar -C "$root" -c . | docker import \
        --change "LABEL conduit.stand-in=$debian_digest" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        - "$debian_image" >/dev/null
}

make_rust() {
    local sysroot context
    sysroot=$(rustc --print sysroot)
    context=$(mktemp -d /var/tmp/conduit-rust-context.XXXXXX)
    scratch+=("$context")
    # rustc, cargo and the host's standard library: not the documentation,
    # sources or other tools of the toolchain.
    mkdir -p "$context/rust/bin" "$context/rust/lib/rustlib"
    cp "$sysroot/bin/rustc" "$sysroot/bin/cargo" "$context/rust/bin/"
    cp -a "$sysroot"/lib/*.so* "$context/rust/lib/"
    cp -a "$sysroot/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')" "$context/rust/lib/rustlib/"
    cp "$ca_bundle" "$context/ca-certificates.crt"
    cp "$here/rust.Dockerfile" "$context/Dockerfile"
    say "building $rust_image (Rust $rust_version from this machine)"
    build "$rust_image" "$rust_digest" "$context"
}

make_postgres() {
    local context
    context=$(mktemp -d /var/tmp/conduit-postgres-context.XXXXXX)
    scratch+=("$context")
    cp "$here/postgres.Dockerfile" "$context/Dockerfile"
    cp "$here/postgres-entrypoint.sh" "$context/"
    say "building $postgres_image (Debian's postgresql-15)"
    build "$postgres_image" "$postgres_digest" "$context"
}

# One maker at a time: a second run waits, then finds the images made.
exec 9>"${TMPDIR:-/tmp}/conduit-base-images.lock"
flock 9

started=$SECONDS
made=""
timed() { # STEP...: runs it and says how long it took
    local began=$SECONDS
    "$@"
    say "$1 took $((SECONDS - began)) s"
    made=yes
}
up_to_date "$debian_image" "$debian_digest" || timed make_debian
up_to_date "$rust_image" "$rust_digest" || timed make_rust
up_to_date "$postgres_image" "$postgres_digest" || timed make_postgres
if [ -n "$made" ]; then
    # The stand-ins these replaced, now untagged.
    docker image prune -f --filter label=conduit.stand-in >/dev/null
    say "made in $((SECONDS - started)) s"
else
    say "up to date ($debian_image, $rust_image, $postgres_image)"
fi
echo "RUST_IMAGE=$rust_image"
echo "RUNTIME_IMAGE=$debian_image"
echo "POSTGRES_IMAGE=$postgres_image"
