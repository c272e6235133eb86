# Stand-in for postgres:15-bookworm from Debian's postgresql-15: the same
# data directory, port, stop signal and POSTGRES_* variables, and
# pg_isready on PATH for healthchecks. It starts as root and runs the server
# as postgres; unlike the official image it cannot run under an arbitrary
# --user (that one resolves unknown uids with nss_wrapper).
ARG BASE
FROM ${BASE}
# Debian's packaging would create and start a cluster of its own at install;
# the entrypoint makes the one this image serves, in the volume.
# Unpinned on purpose: a stand-in follows Debian's bookworm, as the
# official images do.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && sed -ri 's/#?(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/run/postgresql /var/lib/postgresql/data \
    && chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# SIGINT is PostgreSQL's fast shutdown: sessions end, data is flushed.
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
