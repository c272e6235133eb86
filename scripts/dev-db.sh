#!/usr/bin/env bash
# The project-local PostgreSQL used by `make run` and `make test` when no
# DATABASE_URL is given: a throwaway cluster whose data, socket and log live
# under .local/postgres (git-ignored), on its own port.
#
#   dev-db.sh url          print the DATABASE_URL of the local cluster
#   dev-db.sh up           start it (creating it on first use), create the database
#   dev-db.sh down         stop it
#   dev-db.sh psql [args]  open psql on DATABASE_URL (or the local cluster)
#   dev-db.sh reset        drop DATABASE_URL's database even while clients are
#                          connected, and create it again, empty
#   dev-db.sh create NAME  create database NAME on DATABASE_URL's server
#   dev-db.sh drop NAME    drop database NAME, disconnecting its clients
#   dev-db.sh sweep PREFIX drop every database whose name starts with PREFIX
#
# CONDUIT_LOCAL_PG_DIR, CONDUIT_LOCAL_PG_PORT and CONDUIT_LOCAL_PG_SETTINGS
# (server -c options) give another cluster: `make bench` runs its own.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="${CONDUIT_LOCAL_PG_DIR:-$root/.local/postgres}"
data="$dir/data"
sock="$dir/run"
log="$dir/postgres.log"
port="${CONDUIT_LOCAL_PG_PORT:-54329}"
local_url="postgres://conduit:conduit@127.0.0.1:$port/conduit"

die() { echo "dev-db: $*" >&2; exit 1; }

pg_bin() {
    local candidate
    for candidate in "${PG_BIN:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV) \
        "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")"; do
        if [ -n "$candidate" ] && [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_postgres_user() {
    id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
}

# PostgreSQL refuses to run as root: as root, run the server as `postgres`
# (from /, since the checkout may be in a directory it cannot enter).
as_server_user() {
    if [ "$(id -u)" = 0 ]; then
        ensure_postgres_user
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# As root, the cluster's directory must be one the postgres user can reach.
# A checkout under /root is not: then the cluster lives in /var/tmp and
# .local/postgres links to it.
prepare_cluster_dir() {
    mkdir -p "$root/.local"
    if [ "$(id -u)" != 0 ]; then
        mkdir -p "$dir"
        return
    fi
    ensure_postgres_user
    if [ ! -e "$dir" ]; then
        mkdir -p "$dir"
        chown postgres "$dir"
        if ! as_server_user test -w "$dir"; then
            rmdir "$dir"
            local elsewhere
            elsewhere="/var/tmp/conduit-postgres-$(printf '%s' "$dir" | sha256sum | cut -c1-12)"
            mkdir -p "$elsewhere"
            chown postgres "$elsewhere"
            ln -s "$elsewhere" "$dir"
            echo "dev-db: the postgres user cannot reach $root; the cluster lives in $elsewhere" >&2
        fi
    fi
    dir=$(readlink -f "$dir")
    data="$dir/data"
    sock="$dir/run"
    log="$dir/postgres.log"
    mkdir -p "$sock"
    chown -R postgres "$dir"
    as_server_user test -w "$dir" || die "the postgres user cannot write to $dir: move the checkout somewhere it can reach, or set DATABASE_URL."
}

# Splits a postgres:// URL into the database name and a URL of the same
# server's maintenance database.
db_name() { local path="${1##*/}"; echo "${path%%\?*}"; }
maintenance_url() {
    local url="$1" query=""
    case "$url" in *\?*) query="?${url#*\?}"; url="${url%%\?*}" ;; esac
    echo "${url%/*}/postgres$query"
}

need_psql() {
    command -v psql >/dev/null 2>&1 || die "psql (the PostgreSQL client) is missing: install it (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq)."
}

psql_on() {
    need_psql
    PGOPTIONS="--client-min-messages=warning" psql -X -v ON_ERROR_STOP=1 -q "$@"
}

# As root on Debian or Ubuntu, a missing server is installed from the
# distribution's packages; anywhere else the user is told what to install.
install_postgres() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    echo "dev-db: PostgreSQL's server is missing; installing it from the distribution's packages (apt-get install postgresql, without Debian's default cluster)" >&2
    local log
    log=$(mktemp)
    # Debian's package would also create and start a cluster on port 5432
    # that nothing here uses.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/conduit.conf
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq postgresql >"$log" 2>&1 \
        && ! { apt-get update -qq && apt-get install -y -qq postgresql; } >"$log" 2>&1; then
        tail -n 5 "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

up() {
    local bin
    if ! bin=$(pg_bin); then
        install_postgres && bin=$(pg_bin) \
            || die "PostgreSQL server binaries (initdb, pg_ctl) were not found: install them (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@15), or set DATABASE_URL to a running server."
    fi
    prepare_cluster_dir
    mkdir -p "$sock"
    if [ ! -f "$data/PG_VERSION" ]; then
        echo "dev-db: creating a local cluster in $data" >&2
        as_server_user "$bin/initdb" -D "$data" -U conduit --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; die "initdb failed (log above)."; }
    fi
    if ! as_server_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        # fsync off: this cluster is a throwaway for development and tests,
        # and creating one database per test is much faster without it.
        local settings="${CONDUIT_LOCAL_PG_SETTINGS:--c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off}"
        if ! as_server_user "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
            -o "-p $port -k $sock -c listen_addresses=127.0.0.1 $settings" \
            start >/dev/null; then
            tail -n 5 "$log" >&2 || true
            die "PostgreSQL did not start on port $port (log above; if the port is in use, set CONDUIT_LOCAL_PG_PORT to a free one)."
        fi
    fi
    if [ "$(psql_on "$(maintenance_url "$local_url")" -tAc "SELECT 1 FROM pg_database WHERE datname = 'conduit'")" != 1 ]; then
        psql_on "$(maintenance_url "$local_url")" -c "CREATE DATABASE conduit"
    fi
}

down() {
    local bin
    bin=$(pg_bin) || return 0
    [ -e "$dir" ] && dir=$(readlink -f "$dir") && data="$dir/data"
    if [ -f "$data/PG_VERSION" ] && as_server_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_server_user "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        echo "dev-db: stopped" >&2
    fi
}

url="${DATABASE_URL:-$local_url}"
case "${1:-}" in
    url) echo "$local_url" ;;
    up) up ;;
    down) down ;;
    psql) shift; need_psql; exec psql "$url" "$@" ;;
    reset)
        name=$(db_name "$url")
        psql_on "$(maintenance_url "$url")" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" -c "CREATE DATABASE \"$name\""
        ;;
    create) psql_on "$(maintenance_url "$url")" -c "CREATE DATABASE \"$2\"" ;;
    drop) psql_on "$(maintenance_url "$url")" -c "DROP DATABASE IF EXISTS \"$2\" WITH (FORCE)" ;;
    sweep)
        for name in $(psql_on "$(maintenance_url "$url")" -tAc "SELECT datname FROM pg_database WHERE starts_with(datname, '$2')"); do
            psql_on "$(maintenance_url "$url")" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)"
        done
        ;;
    *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
