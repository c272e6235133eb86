#!/usr/bin/env python3
"""`make topology-test`: Conduit as users run it at scale, on loopback,
as processes: PostgreSQL, three replicas, HAProxy health-checking /ready in
front of them, and wrk as the load. Scenarios, each under steady load:

  sigterm  one of three replicas stopped with SIGTERM: zero failed requests
  sigkill  one killed with SIGKILL: at most the requests in flight on it
           fail, and the other two keep serving
  roll     a rolling upgrade to a "new release" that adds an expand
           migration (a nullable column filled by a trigger, then a batched
           backfill), replica by replica: zero non-2xx; then a contract
           migration run as a release step, still under load
  pgbouncer the article list through PgBouncer (transaction pooling)
           against direct connections, at the same concurrency

The "new release" is the same binary started with the hidden
`--migrations-dir` flag on a directory made of migrations/ plus
tests/fixtures/topology_release2: the embedded set stays untouched and no
second build is needed (the code of a release is not what is tested; its
migrations meeting the old release's traffic is).

Bounded in time, stops everything it started, installs haproxy, pgbouncer
and wrk from the distribution when missing and running as root. Results:
target/topology/results.json and results.md. Standard library only.

Ports: 127.0.0.1:31130-31159 (TOPOLOGY_PORT_BASE moves them), below the
kernel's ephemeral range (Linux: 32768-60999), from which every outgoing
connection on the host takes its local port: a port in that range can be
held by any connection, or its TIME_WAIT, when a replica comes to listen
on it, and the replica then fails to start ("Address already in use").
"""

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "topology"
BIN = ROOT / "target" / "debug" / "conduit"
BASE = int(os.environ.get("TOPOLOGY_PORT_BASE", "31130"))
PORTS = range(BASE, BASE + 30)
PG_PORT = BASE
LB_PORT = BASE + 1
BOUNCER_PORT = BASE + 2
BOUNCER_SERVER_CONNECTIONS = 4
REPLICA_PORTS = [BASE + 11, BASE + 12, BASE + 13]
CONCURRENCY = int(os.environ.get("TOPOLOGY_CONCURRENCY", "16"))
SECONDS = int(os.environ.get("TOPOLOGY_SECONDS", "12"))
READINESS_DELAY = "2s"
# The whole run must end; each wait below is bounded too.
DEADLINE = time.monotonic() + int(os.environ.get("TOPOLOGY_TIMEOUT_SECS", "600"))

PG_ENV = {
    "CONDUIT_LOCAL_PG_DIR": str(ROOT / ".local" / "topology-postgres"),
    "CONDUIT_LOCAL_PG_PORT": str(PG_PORT),
    "CONDUIT_LOCAL_PG_SETTINGS": "-c max_connections=200",
}

started = []  # every process this run started, stopped at the end
SEED = {}  # the seed user's token, for write loads
results = {"scenarios": {}}


# Where the run is, for every failure to name: the scenario and its step.
WHERE = {"scenario": "setup", "step": "starting"}
# Lines of each log a failure prints, so that CI's output alone says why.
LOG_TAIL_LINES = 15


def log(message):
    print(f"topology: {message}", flush=True)


def enter(scenario, step="starting"):
    WHERE.update(scenario=scenario, step=step)


def at(step):
    WHERE["step"] = step


def where():
    return f"scenario {WHERE['scenario']}, step {WHERE['step']!r}"


def print_tails(logs):
    for path in logs:
        path = Path(path)
        try:
            tail = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError as error:
            tail = [f"(cannot read it: {error})"]
        print(f"topology:   read {path}; its last lines:", file=sys.stderr)
        for line in tail:
            print(f"topology:   | {line[:400]}", file=sys.stderr)
    sys.stderr.flush()


def die(message, logs=()):
    """Fails the run, naming the scenario and step, the figures (in
    `message`) and the logs to read, whose last lines it prints."""
    print(f"topology: FAILED in {where()}: {message}", file=sys.stderr, flush=True)
    print_tails(logs)
    raise SystemExit(1)


def ephemeral_range():
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def check_ports():
    """The ports must be free now, and outside the ephemeral range, where
    any outgoing connection may hold one when a replica comes to bind it."""
    at("checking the ports")
    ephemeral = ephemeral_range()
    if ephemeral and PORTS.start <= ephemeral[1] and ephemeral[0] <= PORTS.stop - 1:
        log(f"WARNING: ports {PORTS.start}-{PORTS.stop - 1} overlap the kernel's ephemeral range "
            f"{ephemeral[0]}-{ephemeral[1]} (net.ipv4.ip_local_port_range): any outgoing connection "
            "can hold one of them, and a replica then fails to bind it; set TOPOLOGY_PORT_BASE "
            "outside that range")
    # PostgreSQL's port is dev-db.sh's to check: a cluster left running
    # by an interrupted run is reused.
    for port in (LB_PORT, BOUNCER_PORT, *REPLICA_PORTS, *range(BASE + 20, BASE + 23)):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as error:
                die(f"port {port} is taken ({error}); the sockets on it:\n{sockets_on(port)}\n"
                    "set TOPOLOGY_PORT_BASE to a free range of 30 ports")


def sockets_on(port):
    """What holds a local port, as `ss` shows it."""
    try:
        return subprocess.run(["ss", "-tanpH", f"( sport = :{port} )"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "(none now)"
    except (OSError, subprocess.SubprocessError) as error:
        return f"(ss failed: {error})"


def check_deadline(what):
    if time.monotonic() > DEADLINE:
        die(f"out of time while {what}")


def run(args, env=None, **kwargs):
    # Never the caller's DATABASE_URL (make exports the test cluster's):
    # this run resets its own database and must not reach another.
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(args, check=True, env={**base, **(env or {})}, **kwargs)


def ensure_tools():
    missing = [t for t in ("haproxy", "pgbouncer", "wrk") if shutil.which(t) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        die(f"missing {', '.join(missing)}: install them (Debian: apt-get install {' '.join(missing)})")
    log(f"installing {', '.join(missing)} from the distribution")
    run(["apt-get", "update", "-qq"])
    run(["apt-get", "install", "-y", "-qq", *missing],
        env={"DEBIAN_FRONTEND": "noninteractive"})


def ensure_hurl():
    """The RealWorld suite's runner, for the suite through PgBouncer."""
    run([str(ROOT / "scripts" / "ensure-hurl.sh")])
    os.environ["PATH"] = f"{Path.home() / '.cargo' / 'bin'}:{os.environ['PATH']}"


def dev_db(*args, capture=False):
    result = run([str(ROOT / "scripts" / "dev-db.sh"), *args], env=PG_ENV,
                 capture_output=capture, text=True)
    return result.stdout.strip() if capture else None


def psql(sql):
    result = run([str(ROOT / "scripts" / "dev-db.sh"), "psql", "-XAtq", "-c", sql],
                 env={**PG_ENV, "DATABASE_URL": DB_URL}, capture_output=True, text=True)
    return result.stdout.strip()


def http(method, url, body=None, token=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        # The body says why (a 503's reason), for a failure to print.
        try:
            return error.code, json.loads(error.read() or b"null")
        except (ValueError, OSError):
            return error.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


class Replica:
    def __init__(self, port, migrations_dir=None, database_url=None, name=None,
                 pool_mode="session", pool_size=8):
        self.port = port
        self.name = name or f"replica-{port}"
        self.log_path = OUT / f"{self.name}.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CONDUIT_") and k != "DATABASE_URL"}
        env.update({
            "DATABASE_URL": database_url or DB_URL,
            "CONDUIT_MIGRATION_DATABASE_URL": DB_URL,
            "CONDUIT_LISTEN": f"127.0.0.1:{port}",
            "CONDUIT_LOG_FORMAT": "json",
            "CONDUIT_SHUTDOWN_READINESS_DELAY": READINESS_DELAY,
            "CONDUIT_DB_POOL_SIZE": str(pool_size),
            "CONDUIT_DB_POOL_MODE": pool_mode,
            "CONDUIT_TRUSTED_PROXIES": "127.0.0.1/32",
            # Per-request log lines cost a fifth of the throughput.
            "RUST_LOG": "warn,conduit=info",
        })
        args = [str(BIN), "serve"]
        if migrations_dir:
            args += ["--migrations-dir", str(migrations_dir)]
        self.log_file = open(self.log_path, "a")
        self.process = subprocess.Popen(args, env=env, stdout=self.log_file,
                                        stderr=subprocess.STDOUT, cwd=OUT)
        started.append(self.process)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, limit=90, path="/ready"):
        at(f"waiting for {self.name} to answer {path} with 200")
        end = time.monotonic() + limit
        last = None
        while time.monotonic() < end:
            if self.process.poll() is not None:
                held = ""
                if "Address already in use" in self.log_text():
                    held = f"; what holds port {self.port} now:\n{sockets_on(self.port)}"
                die(f"{self.name} exited with {self.process.returncode} before it was ready{held}",
                    [self.log_path])
            status, body = http("GET", self.url(path), timeout=2)
            if status == 200:
                return
            last = (status, body)
            time.sleep(0.1)
        die(f"{self.name} not ready within {limit}s; its last {path} answered {last}",
            [self.log_path])

    def signal(self, sig):
        self.process.send_signal(sig)

    def wait_exit(self, limit=60):
        at(f"waiting for {self.name} to exit")
        try:
            return self.process.wait(limit)
        except subprocess.TimeoutExpired:
            die(f"{self.name} did not exit within {limit}s", [self.log_path])

    def stop(self):
        """SIGTERM, then the exit, which must be clean: a replica that
        fails to stop is a defect of its own, whatever the load saw."""
        self.signal(signal.SIGTERM)
        code = self.wait_exit()
        if code != 0:
            die(f"{self.name} exited with {code} after SIGTERM (0 expected)", [self.log_path])

    def log_text(self):
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")


def haproxy_config():
    servers = "\n".join(
        f"    server r{i + 1} 127.0.0.1:{port} check" for i, port in enumerate(REPLICA_PORTS))
    return f"""global
    stats socket {OUT}/haproxy.sock mode 600 level admin
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # /ready queries the database, behind the requests' pool: on a busy
    # host a check can take longer than the 300 ms between checks, and a
    # check timed out at 300 ms took every replica out at once.
    timeout check 2s
    # The client's address for the login throttle, as docs/deploying.md
    # sets it up (the replicas trust 127.0.0.1).
    option forwardfor
    # A request whose connection failed, or that got no answer at all
    # (a keep-alive connection the replica closed as it stopped), goes
    # to another replica; answered requests are never replayed.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend conduit
    bind 127.0.0.1:{LB_PORT}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
    # Out after two failed checks 300 ms apart: well inside the replicas'
    # {READINESS_DELAY} of 503 before they stop accepting.
    default-server inter 300ms fall 2 rise 2
{servers}
"""


def haproxy_states():
    """{server name: status} from HAProxy's stats socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(str(OUT / "haproxy.sock"))
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    rows = csv.reader(data.decode().lstrip("# ").splitlines())
    header = next(rows)
    states = {}
    for row in rows:
        if len(row) == len(header):
            record = dict(zip(header, row))
            if record["pxname"] == "replicas" and record["svname"] not in ("BACKEND", "FRONTEND"):
                states[record["svname"]] = record["status"]
    return states


def wait_balancer(server, wanted, limit=60):
    at(f"waiting for HAProxy to see {server} {wanted}")
    end = time.monotonic() + limit
    status = ""
    while time.monotonic() < end:
        status = haproxy_states().get(server, "")
        if status.startswith(wanted):
            return
        time.sleep(0.1)
    die(f"HAProxy never saw {server} {wanted} within {limit}s (last status {status!r})",
        [OUT / "haproxy.log"])


class Load:
    """wrk against `url` in the background; `finish` returns its counts."""

    def __init__(self, url, seconds=SECONDS, connections=CONCURRENCY, script=None, token=None):
        self.started = time.monotonic()
        self.connections = connections
        self.seconds = seconds
        self.url = url
        bench = ROOT / "scripts" / "bench"
        lua = bench / "wrk-report.lua"
        if script:
            # wrk takes one script: the scenario's, then the report's.
            lua = OUT / f"{script}-{os.getpid()}-{len(started)}.lua"
            lua.write_text((bench / script).read_text() + "\n" + (bench / "wrk-report.lua").read_text())
        args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(lua)]
        if token:
            args += ["-H", f"Authorization: Token {token}"]
        self.process = subprocess.Popen(
            args + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(self.process)

    def elapsed(self):
        return round(time.monotonic() - self.started, 2)

    def finish(self):
        at(f"waiting for wrk ({self.url}) to finish")
        try:
            output, _ = self.process.communicate(timeout=self.seconds + 60)
        except subprocess.TimeoutExpired:
            die(f"wrk against {self.url} did not end within {self.seconds + 60}s")
        for line in output.splitlines():
            if line.startswith("BENCH_JSON "):
                report = json.loads(line[len("BENCH_JSON "):])
                report["failed"] = report["non_2xx"] + report["socket_errors"]
                report["requests_per_s"] = round(
                    report["requests"] / (report["duration_us"] / 1e6), 1)
                return report
        die(f"wrk against {self.url} exited {self.process.returncode} with no report:\n{output}")


def figures(report):
    """A load's counts, as a failure names them."""
    return (f"{report['requests']} requests: {report['non_2xx']} non-2xx, "
            f"{report['socket_errors']} socket errors; p99 {report['p99_us'] / 1000:.1f} ms")


def balanced_logs(replicas):
    return [r.log_path for r in replicas] + [OUT / "haproxy.log"]


def step(steps, name, started_at, load):
    steps.append({"step": name, "at_s": load.elapsed(),
                  "took_s": round(time.monotonic() - started_at, 2)})
    log(f"  {name}: {steps[-1]['took_s']}s (at {steps[-1]['at_s']}s into the load)")


def seed(base, replicas):
    """A user and some articles, through the balancer."""
    at("registering the seed user")
    status, body = http("POST", f"{base}/api/users", {"user": {
        "username": "topology", "email": "topology@example.org",
        "password": "topology-password-1"}})
    if status != 201:
        die(f"registering the seed user answered {status}", balanced_logs(replicas))
    token = body["user"]["token"]
    SEED["token"] = token
    at("creating the seed articles")
    for i in range(60):
        status, _ = http("POST", f"{base}/api/articles", {"article": {
            "title": f"Topology {i}", "description": "seed",
            "body": " ".join(["word"] * (i + 1)), "tagList": ["topology"]}}, token)
        if status != 201:
            die(f"creating seed article {i} answered {status}", balanced_logs(replicas))


def scenario_sigterm(replicas, base):
    enter("sigterm")
    log("scenario sigterm: one of three replicas stopped with SIGTERM under load")
    steps = []
    load = Load(f"{base}/api/articles")
    time.sleep(2)
    victim = replicas[0]
    t = time.monotonic()
    victim.signal(signal.SIGTERM)
    wait_balancer("r1", "DOWN")
    step(steps, "SIGTERM until HAProxy marks the replica DOWN", t, load)
    t = time.monotonic()
    code = victim.wait_exit()
    step(steps, "SIGTERM until the replica exited", t, load)
    if code != 0:
        die(f"the stopped replica exited with {code} (0 expected)", [victim.log_path])
    t = time.monotonic()
    replicas[0] = Replica(REPLICA_PORTS[0])
    replicas[0].wait_ready()
    wait_balancer("r1", "UP")
    step(steps, "replacement started, ready and UP in HAProxy", t, load)
    report = load.finish()
    report["steps"] = steps
    results["scenarios"]["sigterm"] = report
    log(f"  {report['requests']} requests, {report['failed']} failed")
    at("judging the load")
    if report["failed"]:
        die(f"SIGTERM of one replica failed {report['failed']} requests (0 allowed); {figures(report)}",
            balanced_logs([victim, *replicas]))


def scenario_sigkill(replicas, base):
    enter("sigkill")
    log("scenario sigkill: one of three replicas killed with SIGKILL under load")
    steps = []
    load = Load(f"{base}/api/articles")
    time.sleep(2)
    t = time.monotonic()
    victim = replicas[1]
    victim.signal(signal.SIGKILL)
    victim.wait_exit()
    wait_balancer("r2", "DOWN")
    step(steps, "SIGKILL until HAProxy marks the replica DOWN", t, load)
    at("30 requests through HAProxy after the kill")
    served = sum(http("GET", f"{base}/api/articles")[0] == 200 for _ in range(30))
    t = time.monotonic()
    replicas[1] = Replica(REPLICA_PORTS[1])
    replicas[1].wait_ready()
    wait_balancer("r2", "UP")
    step(steps, "replacement started, ready and UP in HAProxy", t, load)
    report = load.finish()
    report["steps"] = steps
    report["served_by_the_others_after_the_kill"] = f"{served}/30"
    results["scenarios"]["sigkill"] = report
    log(f"  {report['requests']} requests, {report['failed']} failed; after the kill {served}/30 served")
    at("judging the load")
    if served != 30:
        die(f"after the kill the other replicas served {served} of 30 requests",
            balanced_logs(replicas))
    # A killed process can fail only what it had accepted: at most one
    # request per wrk connection routed to it.
    if report["failed"] > load.connections:
        die(f"SIGKILL failed {report['failed']} requests, more than the {load.connections} "
            f"that can be in flight; {figures(report)}", balanced_logs([victim, *replicas]))


# The fixtures are numbered 9xx so that they stay the newest migrations
# while migrations/ grows.
def migrations_dir(name, *fixtures):
    target = OUT / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ROOT / "migrations", target)
    for fixture in fixtures:
        for migration in (ROOT / "tests" / "fixtures" / fixture).iterdir():
            shutil.copytree(migration, target / migration.name)
    return target


def scenario_roll(replicas, base):
    enter("roll")
    log("scenario roll: three replicas replaced one by one by a release with an expand migration")
    release2 = migrations_dir("release2-migrations", "topology_release2")
    steps = []
    load = Load(f"{base}/api/articles", seconds=SECONDS * 3)
    time.sleep(2)
    old_release = list(replicas)
    for i, port in enumerate(REPLICA_PORTS):
        t = time.monotonic()
        replicas[i].signal(signal.SIGTERM)
        wait_balancer(f"r{i + 1}", "DOWN")
        code = replicas[i].wait_exit()
        if code != 0:
            die(f"replica {i + 1} of the old release exited with {code} after SIGTERM (0 expected)",
                [replicas[i].log_path])
        replicas[i] = Replica(port, migrations_dir=release2, name=f"release2-{port}")
        replicas[i].wait_ready()
        wait_balancer(f"r{i + 1}", "UP")
        step(steps, f"replica {i + 1}: old stopped, new ready and UP"
             + (" (migrations 901, 902 applied at its boot)" if i == 0 else ""), t, load)
        if i == 0:
            # An old replica serves on the expanded schema, ready, and
            # names the migrations it does not know.
            at("asking an old replica's /ready about the new migrations")
            status, body = http("GET", replicas[1].url("/ready"))
            unknown = (body or {}).get("unknown_migrations", [])
            report_unknown = f"old replica /ready: {status}, unknown_migrations {unknown}"
            log(f"  {report_unknown}")
            if status != 200 or not unknown:
                die(f"{report_unknown} (200 and 901, 902 expected); its body: {body}",
                    [replicas[1].log_path])
    report = load.finish()
    report["steps"] = steps
    report["old_release_during_the_roll"] = report_unknown
    at("counting the backfilled articles")
    nulls = psql("SELECT count(*) FROM articles WHERE word_count IS NULL")
    total = psql("SELECT count(*) FROM articles")
    report["articles_backfilled"] = f"{int(total) - int(nulls)}/{total}"
    results["scenarios"]["roll"] = report
    log(f"  {report['requests']} requests, {report['failed']} failed; backfilled {report['articles_backfilled']}")
    at("judging the load")
    if report["failed"]:
        die(f"the rolling upgrade failed {report['failed']} requests (0 allowed); {figures(report)}",
            balanced_logs([*old_release, *replicas]))
    if nulls != "0":
        die(f"{nulls} of {total} articles were not backfilled", [r.log_path for r in replicas])

    enter("contract")
    log("scenario contract: the contract migrations as a release step, under load")
    release3 = migrations_dir("release3-migrations", "topology_release2", "topology_release3")
    steps = []
    load = Load(f"{base}/api/articles")
    time.sleep(2)
    t = time.monotonic()
    at("conduit migrate run")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUIT_")}
    env.update({"DATABASE_URL": DB_URL, "CONDUIT_LOG_FORMAT": "json"})
    with open(OUT / "contract.log", "w") as out:
        code = subprocess.run([str(BIN), "migrate", "run", "--migrations-dir", str(release3)],
                              env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120).returncode
    if code != 0:
        die(f"`conduit migrate run` of the contract exited with {code}", [OUT / "contract.log"])
    step(steps, "conduit migrate run (903 NOT VALID, 904 VALIDATE)", t, load)
    report = load.finish()
    report["steps"] = steps
    at("reading the contract constraint")
    valid = psql("SELECT convalidated FROM pg_constraint WHERE conname = 'articles_word_count_present'")
    results["scenarios"]["contract"] = report
    log(f"  {report['requests']} requests, {report['failed']} failed; constraint validated: {valid}")
    at("judging the load")
    if report["failed"]:
        die(f"the contract migration failed {report['failed']} requests (0 allowed); {figures(report)}",
            balanced_logs(replicas) + [OUT / "contract.log"])
    if valid != "t":
        die(f"the contract constraint is not validated (convalidated {valid!r})", [OUT / "contract.log"])


def pgbouncer_config(home):
    parsed = urllib.parse.urlsplit(DB_URL)
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
    for mode, url, pool_mode in (("direct", DB_URL, "session"),
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


def write_results():
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| scenario | requests | failed | non-2xx | socket errors | req/s | p99 ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, report in results["scenarios"].items():
        rows = report.items() if name == "pgbouncer" else [(None, report)]
        for mode, r in rows:
            label = f"{name} ({mode})" if mode else name
            lines.append(f"| {label} | {r['requests']} | {r['failed']} | {r['non_2xx']} | "
                         f"{r['socket_errors']} | {r['requests_per_s']} | {r['p99_us'] / 1000:.1f} |")
    lines.append("")
    for name, report in results["scenarios"].items():
        for s in report.get("steps", []) if isinstance(report, dict) else []:
            lines.append(f"- {name}: {s['step']}: {s['took_s']} s (at {s['at_s']} s)")
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def stop_everything():
    for process in reversed(started):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    try:
        dev_db("down")
    except subprocess.CalledProcessError:
        pass


def main():
    global DB_URL
    at("installing the tools")
    ensure_tools()
    ensure_hurl()
    check_ports()
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.glob("*.log"):
        stale.unlink()
    at("building the debug binary")
    log("building the debug binary")
    run(["cargo", "build", "--locked", "--bin", "conduit"])
    at("starting PostgreSQL")
    dev_db("up")
    DB_URL = dev_db("url", capture=True)
    run([str(ROOT / "scripts" / "dev-db.sh"), "reset"], env={**PG_ENV, "DATABASE_URL": DB_URL})
    (OUT / "haproxy.cfg").write_text(haproxy_config())
    replicas = [Replica(port) for port in REPLICA_PORTS]
    for replica in replicas:
        replica.wait_ready()
    at("starting HAProxy")
    balancer = subprocess.Popen(["haproxy", "-db", "-f", str(OUT / "haproxy.cfg")],
                                stdout=open(OUT / "haproxy.log", "w"), stderr=subprocess.STDOUT)
    started.append(balancer)
    time.sleep(0.5)
    for i in range(len(REPLICA_PORTS)):
        wait_balancer(f"r{i + 1}", "UP")
    base = f"http://127.0.0.1:{LB_PORT}"
    seed(base, replicas)
    results["load"] = (f"wrk -t2 -c{CONCURRENCY} GET /api/articles through HAProxy, "
                       f"{SECONDS}s per scenario ({SECONDS * 3}s for the roll); debug build")
    for scenario in (scenario_sigterm, scenario_sigkill, scenario_roll):
        check_deadline(scenario.__name__)
        scenario(replicas, base)
    enter("between the scenarios", "stopping the three replicas")
    for replica in replicas:
        replica.signal(signal.SIGTERM)
    for replica in replicas:
        code = replica.wait_exit()
        if code != 0:
            die(f"{replica.name} exited with {code} after SIGTERM (0 expected)", [replica.log_path])
    check_deadline("pgbouncer")
    scenario_pgbouncer()


def report_uncaught(error):
    """Anything but die(): still the scenario and step, then the trace."""
    print(f"topology: FAILED in {where()}: uncaught {type(error).__name__}: {error}",
          file=sys.stderr, flush=True)
    traceback.print_exception(error, file=sys.stderr)
    output = getattr(error, "stderr", None) or getattr(error, "output", None)
    if output:
        print(f"topology: its output:\n{output}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    DB_URL = None
    code = 0
    try:
        main()
        log("passed")
    except SystemExit as stop:
        code = stop.code
    except BaseException as error:  # noqa: BLE001 - reported, then the run fails
        report_uncaught(error)
        code = 1
    # The results and the stop must not hide the verdict above.
    for finish in (write_results, stop_everything):
        try:
            finish()
        except BaseException as error:  # noqa: BLE001
            enter("after the scenarios", finish.__name__)
            report_uncaught(error)
            code = code or 1
    sys.exit(code)
