"""The bench's own PostgreSQL cluster (scripts/dev-db.sh with PG_ENV):
its databases, psql on them, its log and its postmaster."""

import re
from pathlib import Path

import conduit_scripts
from settings import PG_ENV, PG_PORT, ROOT, die, run


def dev_db(*args):
    return run([str(ROOT / "scripts" / "dev-db.sh"), *args], env=PG_ENV).stdout.strip()


def cluster_url():
    return dev_db("url")


def database_url(name):
    return re.sub(r"/[^/?]+(\?.*)?$", f"/{name}", cluster_url())


def psql(sql, url=None):
    try:
        return conduit_scripts.psql(sql, url or database_url("postgres"), cwd=ROOT)
    except conduit_scripts.CommandFailed as failed:
        die(str(failed))


def recreate(name):
    dev_db("drop", name)
    dev_db("create", name)
    return database_url(name)


def cluster_log():
    path = Path(PG_ENV["CONDUIT_LOCAL_PG_DIR"]).resolve() / "postgres.log"
    return path


def postmaster_pid():
    """The bench cluster's postmaster, from its pid file (None if unknown)."""
    try:
        lines = (Path(PG_ENV["CONDUIT_LOCAL_PG_DIR"]) / "data" / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    return int(lines[0]) if len(lines) > 3 and lines[3].strip() == PG_PORT else None
