#!/usr/bin/env bash
# Entrypoint of the local PostgreSQL stand-in, honouring the variables of
# the official image that compose.yaml uses:
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#   POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default: the user),
#   POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256),
#   PGDATA (default /var/lib/postgresql/data, the volume).
# On an empty data directory it makes the cluster, the superuser and the
# database; on every start it runs the server as the postgres user.
set -euo pipefail

if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user="${POSTGRES_USER:-postgres}"
    database="${POSTGRES_DB:-$user}"
    auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
        echo "postgres: POSTGRES_PASSWORD is not set: set it (or POSTGRES_HOST_AUTH_METHOD=trust, for tests only)." >&2
        exit 1
    fi
    password_option=()
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        pwfile=$(mktemp)
        printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
        password_option=(--pwfile="$pwfile")
    fi
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options
    initdb -D "$PGDATA" --username="$user" "${password_option[@]}" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host="$auth" ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "${pwfile:-}"
    # Other containers connect over the network: every address, with a password.
    echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$database" != postgres ]; then
        # Single-user mode exits 0 even when the statement fails: read what it said.
        said=$(echo "CREATE DATABASE \"${database//\"/\"\"}\"" \
            | postgres --single -D "$PGDATA" -c log_min_messages=warning postgres 2>&1 >/dev/null)
        if grep -q 'ERROR' <<<"$said"; then
            echo "$said" >&2
            # The cluster was made a moment ago: remove it, so the next
            # start (with a corrected POSTGRES_DB) begins again.
            find "$PGDATA" -mindepth 1 -delete
            echo "postgres: could not create the database named by POSTGRES_DB (above)." >&2
            exit 1
        fi
    fi
    echo "postgres: initialised $PGDATA with user $user and database $database"
fi

exec "$@"
