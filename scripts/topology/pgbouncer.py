"""PgBouncer in transaction pooling: against direct connections, after a
replica in the wrong mode, and with many clients while the RealWorld
suite runs through it."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import context as ctx
from context import (
    BASE, BOUNCER_PORT, BOUNCER_SERVER_CONNECTIONS, OUT, PG_PORT, ROOT, SECONDS, SEED, at, die, enter, log, results,
    sockets_on, started,
)
from replica import Replica
from wrkload import Load, figures


def pgbouncer_config(home):
    parsed = urllib.parse.urlsplit(ctx.DB_URL)
    (home / "pgbouncer-users.txt").write_text(f'"{parsed.username}" ""\n')
    # The server login is PgBouncer's; the replicas' own is not checked
    # (auth_type any): a test on loopback, not a deployment recipe.
    # Transaction pooling with few server connections, as in production:
    # the replicas' 40 client connections share 4.
    return f"""[databases]
conduit = host=127.0.0.1 port={PG_PORT} dbname=conduit user={parsed.username} password={parsed.password or ""}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {BOUNCER_PORT}
unix_socket_dir =
auth_type = any
auth_file = {home}/pgbouncer-users.txt
pool_mode = transaction
default_pool_size = {BOUNCER_SERVER_CONNECTIONS}
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
query_wait_timeout = 10
logfile = {home}/pgbouncer.log
"""


def start_pgbouncer():
    # As root PgBouncer runs as postgres, which may not enter the checkout
    # (under /root, say): its files then live in a folder it can reach.
    home = Path(tempfile.mkdtemp(prefix="conduit-pgbouncer-", dir="/var/tmp")) if os.geteuid() == 0 else OUT
    config = home / "pgbouncer.ini"
    config.write_text(pgbouncer_config(home))
    command = ["pgbouncer", str(config)]
    if os.geteuid() == 0:
        for path in [home, *home.glob("pgbouncer*")]:
            shutil.chown(path, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    bouncer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    started.append(bouncer)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", BOUNCER_PORT), timeout=1).close()
            return bouncer, home
        except OSError:
            if bouncer.poll() is not None or time.monotonic() > deadline:
                die(f"PgBouncer did not start on port {BOUNCER_PORT} (exit {bouncer.poll()}); "
                    f"the sockets on it:\n{sockets_on(BOUNCER_PORT)}", [home / "pgbouncer.log"])
            time.sleep(0.1)


def pooler_errors(replica):
    """Lines of a replica's log that say a statement met the wrong session."""
    return [line for line in replica.log_text().splitlines()
            if "prepared statement" in line or "current transaction is aborted" in line]


def scenario_pgbouncer():
    """Through PgBouncer 1.18 in transaction pooling (CONDUIT_DB_POOL_MODE=
    transaction): GET /api/articles against direct connections at the same
    concurrency; then 40 client connections from two replicas over 4 server
    connections, under a read load and a write load while the RealWorld
    Hurl suite runs through one of them. Zero failed requests."""
    enter("pgbouncer", "starting PgBouncer")
    log("scenario pgbouncer: PgBouncer (transaction pooling, "
        f"{BOUNCER_SERVER_CONNECTIONS} server connections) against direct connections")
    bouncer, home = start_pgbouncer()
    bouncer_url = f"postgres://conduit@127.0.0.1:{BOUNCER_PORT}/conduit"
    # First a replica in the wrong (session) mode, as before an operator
    # fixes it: it leaves prepared statements named s0, s1, ... on
    # PgBouncer's server connections, which the replicas below must survive.
    polluter = Replica(BASE + 20, database_url=bouncer_url, name=f"session-mode-{BASE + 20}")
    # Alive is all it must be: in the wrong mode its own statements meet
    # the wrong server sessions, /ready's too, and whether /ready ever
    # answers 200 is chance (it stayed 503 for 90 s in one run of ten).
    polluter.wait_ready(path="/health")
    # Concurrent, so that its statements spread over every server connection.
    burst = Load(polluter.url("/api/articles"), seconds=3, connections=8).finish()
    polluter.stop()
    log(f"  a session-mode replica through PgBouncer first: {burst['failed']} of "
        f"{burst['requests']} requests failed (why CONDUIT_DB_POOL_MODE=transaction exists)")
    loads = {}
    for mode, url, pool_mode in (("direct", ctx.DB_URL, "session"),
                                 ("pgbouncer", bouncer_url, "transaction")):
        replica = Replica(BASE + 20, database_url=url, name=f"{mode}-{BASE + 20}",
                          pool_mode=pool_mode)
        replica.wait_ready()
        report = Load(replica.url("/api/articles"), seconds=max(SECONDS // 2, 5)).finish()
        replica.stop()
        report["pooler_errors"] = len(pooler_errors(replica))
        loads[mode] = report
        log(f"  GET /api/articles {mode}: {report['requests_per_s']} req/s, "
            f"{report['requests']} requests, {report['failed']} failed")

    log("  many clients: two replicas (pool 20 each), reads and writes, and the Hurl suite")
    readers, writers = (Replica(BASE + 21 + i, database_url=bouncer_url, pool_mode="transaction",
                                pool_size=20, name=f"pgbouncer-{BASE + 21 + i}") for i in range(2))
    readers.wait_ready()
    writers.wait_ready()
    reads = Load(readers.url("/api/articles?limit=20"), connections=32)
    writes = Load(writers.url("/"), connections=16, script="wrk-post-delete.lua", token=SEED["token"])
    suite = Path(os.environ.get("CONFORMANCE_DIR", ROOT.parent / "shared" / "conformance" / "realworld")) / "hurl"
    at("the Hurl suite through PgBouncer")
    try:
        hurl = subprocess.run(
            ["hurl", "--test", "--jobs", "1", "--variable", f"host={readers.url('')}",
             "--variable", f"uid=topology{os.getpid()}", *sorted(str(f) for f in suite.glob("*.hurl"))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    except subprocess.TimeoutExpired as timeout:
        (OUT / "pgbouncer-hurl.log").write_text(timeout.stdout or "")
        die("the Hurl suite did not end within 300s",
            [OUT / "pgbouncer-hurl.log", readers.log_path, home / "pgbouncer.log"])
    (OUT / "pgbouncer-hurl.log").write_text(hurl.stdout)
    loads["pgbouncer reads, 32 connections"] = reads.finish()
    loads["pgbouncer writes, 16 connections"] = writes.finish()
    readers.stop()
    writers.stop()
    at("stopping PgBouncer")
    bouncer.terminate()
    try:
        bouncer.wait(10)
    except subprocess.TimeoutExpired:
        die("PgBouncer did not exit within 10s of SIGTERM", [home / "pgbouncer.log"])
    if home != OUT:
        shutil.copy(home / "pgbouncer.log", OUT / "pgbouncer.log")
        shutil.rmtree(home, ignore_errors=True)
    results["scenarios"]["pgbouncer"] = loads
    summary = [line for line in hurl.stdout.splitlines() if "Succeeded" in line or "Failed" in line]
    log(f"  Hurl suite through PgBouncer: exit {hurl.returncode}; {'; '.join(summary[-3:])}")
    for name, report in loads.items():
        if name not in ("direct", "pgbouncer"):
            log(f"  {name}: {report['requests_per_s']} req/s, {report['requests']} requests, "
                f"{report['failed']} failed")
    at("judging the loads and the suite")
    bouncer_logs = [readers.log_path, writers.log_path, OUT / "pgbouncer.log"]
    failed = {name: figures(r) for name, r in loads.items() if r["failed"]}
    if failed:
        die(f"through PgBouncer, loads failed requests (0 allowed): {failed}",
            [OUT / f"{mode}-{BASE + 20}.log" for mode in ("direct", "pgbouncer")] + bouncer_logs)
    errors = pooler_errors(readers) + pooler_errors(writers)
    if errors or loads["pgbouncer"]["pooler_errors"]:
        die(f"through PgBouncer: {len(errors) + loads['pgbouncer']['pooler_errors']} pooler errors "
            f"logged (0 allowed), e.g. {errors[:1]}", [OUT / f"pgbouncer-{BASE + 20}.log"] + bouncer_logs)
    if hurl.returncode != 0:
        errors = [line for line in hurl.stdout.splitlines() if not line.startswith("Success ")]
        die(f"the Hurl suite failed through PgBouncer (exit {hurl.returncode}): "
            f"{'; '.join(summary[-3:])}; its first errors:\n" + "\n".join(errors[:40]),
            [readers.log_path, OUT / "pgbouncer-hurl.log"])
