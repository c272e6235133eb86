#!/usr/bin/env python3
"""`make bench`: how fast Conduit boots, migrates and serves, and how close
each read endpoint comes to what PostgreSQL alone does with the same SQL.

Runs everything itself: builds the release binaries, starts its own
PostgreSQL cluster (durable settings, not the test cluster's fsync=off),
loads the dataset, measures, stops everything, and writes
target/bench/results.json and target/bench/results.md.

Knobs (environment): BENCH_SCALE (1 = 10,000 users, 100,000 articles),
BENCH_SECONDS per measurement, BENCH_WARMUP_SECONDS, BENCH_CONCURRENCY,
BENCH_BOOT_RUNS, BENCH_PG_PORT, BENCH_ATTACKERS, BENCH_CONTENTION (0 skips
the runs under contention), BENCH_STRESS_CPUS (stress-ng's CPU hogs, one
per core by default). Standard library only.
"""

import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "scripts" / "bench"
OUT = ROOT / "target" / "bench"
BIN = ROOT / "target" / "release"

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP_SECONDS", "3"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
# The attack scenario's connections (registrations and wrong-password logins).
ATTACKERS = int(os.environ.get("BENCH_ATTACKERS", "64"))
BOOT_RUNS = int(os.environ.get("BENCH_BOOT_RUNS", "10"))
PG_PORT = os.environ.get("BENCH_PG_PORT", "54339")
CORES = os.cpu_count() or 1
# Every read scenario runs a second time while stress-ng keeps every core
# busy at normal priority: a host shared with other work.
CONTENTION = os.environ.get("BENCH_CONTENTION", "1") != "0"
STRESS_CPUS = int(os.environ.get("BENCH_STRESS_CPUS", str(CORES)))
THREADS = min(CORES, 4)
PASSWORD = "bench-password"

# The bench cluster is durable (fsync and synchronous commit on, as in
# production), with memory for the dataset and the statement log bench.py
# reads to learn each endpoint's SQL.
PG_ENV = {
    "CONDUIT_LOCAL_PG_DIR": str(ROOT / ".local" / "bench-postgres"),
    "CONDUIT_LOCAL_PG_PORT": PG_PORT,
    "CONDUIT_LOCAL_PG_SETTINGS": "-c max_connections=200 -c shared_buffers=512MB "
    "-c effective_cache_size=4GB -c work_mem=16MB -c maintenance_work_mem=256MB "
    "-c log_line_prefix='%m [%p] '",
}


def die(message):
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(1)


def step(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run(args, env=None, capture=True, check=True):
    result = subprocess.run(
        args,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
    )
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-5:]
        die(f"{' '.join(map(str, args))} failed: " + " / ".join(detail))
    return result


# --- tools -----------------------------------------------------------------


def ensure_package(command, package, why):
    """`command` on PATH, installed from Debian's `package` when root."""
    if shutil.which(command):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        step(f"installing {package} (Debian package)")
        if run(["apt-get", "install", "-y", "-q", package], check=False).returncode != 0:
            run(["apt-get", "update", "-q"])
            run(["apt-get", "install", "-y", "-q", package])
    else:
        die(f"{command} ({why}) is missing: install it (Debian/Ubuntu: sudo apt-get install {package}).")


def ensure_tools():
    ensure_package("wrk", "wrk", "the HTTP load generator")
    if CONTENTION:
        ensure_package("stress-ng", "stress-ng", "keeps the cores busy for the runs under contention; BENCH_CONTENTION=0 skips them")
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)
    pgbench = str(candidates[0]) if candidates else shutil.which("pgbench")
    if not pgbench:
        die("pgbench is missing: it comes with the PostgreSQL server packages (Debian/Ubuntu: apt-get install postgresql).")
    if not shutil.which("psql"):
        die("psql is missing: install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client).")
    return pgbench


def build():
    step("building the release binaries")
    # Two builds: the server measured is the one shipped, without the
    # bench-tools feature that only the dataset and hash tools need.
    run(["cargo", "build", "--release", "--locked", "--bin", "conduit"], capture=False)
    run(["cargo", "build", "--release", "--locked", "--features", "bench-tools", "--bin", "conduit-bench"], capture=False)


# --- the cluster -----------------------------------------------------------


def dev_db(*args):
    return run([str(ROOT / "scripts" / "dev-db.sh"), *args], env=PG_ENV).stdout.strip()


def cluster_url():
    return dev_db("url")


def database_url(name):
    return re.sub(r"/[^/?]+(\?.*)?$", f"/{name}", cluster_url())


def psql(sql, url=None):
    return run(["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", url or database_url("postgres"), "-c", sql]).stdout.strip()


def recreate(name):
    dev_db("drop", name)
    dev_db("create", name)
    return database_url(name)


def cluster_log():
    path = Path(PG_ENV["CONDUIT_LOCAL_PG_DIR"]).resolve() / "postgres.log"
    return path


# --- the server --------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=None, token=None, timeout=5.0):
    """One HTTP/1.1 request on a new connection: (status, body)."""
    payload = json.dumps(body).encode() if body is not None else b""
    headers = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    if token:
        headers.append(f"Authorization: Token {token}")
    if body is not None:
        headers += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(("\r\n".join(headers) + "\r\n\r\n").encode() + payload)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        rest = dechunk(rest)
    return status, rest.decode(errors="replace")


def dechunk(data):
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


def ready_status(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(16)
    except OSError:
        return b""


class Server:
    """The release binary serving `url` on a free port, logging to a file."""

    def __init__(self, url, extra_env=None):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="conduit-bench-", suffix=".log", delete=False)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CONDUIT_LISTEN": f"127.0.0.1:{self.port}",
            "CONDUIT_LOG_FORMAT": "json",
            "RUST_LOG": "info",
            **(extra_env or {}),
        }
        self.started = time.perf_counter()
        self.process = subprocess.Popen([str(BIN / "conduit"), "serve"], env=env, stdout=self.log, stderr=self.log)

    def wait_ready(self, timeout=60.0):
        """Seconds from exec to the first 200 from /ready, polled every 0.5 ms."""
        while True:
            if ready_status(self.port).startswith(b"HTTP/1.1 200"):
                return time.perf_counter() - self.started
            if self.process.poll() is not None:
                die(f"the server exited during boot; its log: {Path(self.log.name).read_text()[-2000:]}")
            if time.perf_counter() - self.started > timeout:
                die("the server was not ready within a minute")
            time.sleep(0.0005)

    def memory_kib(self):
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
        return {"rss": int(fields["VmRSS"]), "peak": int(fields["VmHWM"])}

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.unlink(self.log.name)


# --- measurements --------------------------------------------------------------


def measure_boot():
    """Boot to /ready on an empty database, then on the same, now up to
    date, database; and `conduit migrate run` alone on an empty one."""
    empty, current, migrate = [], [], []
    for _ in range(BOOT_RUNS):
        url = recreate("bench_boot")
        server = Server(url)
        empty.append(server.wait_ready() * 1000)
        server.stop()
        server = Server(url)
        current.append(server.wait_ready() * 1000)
        server.stop()
        url = recreate("bench_boot")
        started = time.perf_counter()
        run([str(BIN / "conduit"), "migrate", "run"], env={"DATABASE_URL": url, "RUST_LOG": "warn"})
        migrate.append((time.perf_counter() - started) * 1000)
    dev_db("drop", "bench_boot")
    summary = lambda runs: {"median_ms": round(statistics.median(runs), 1), "runs_ms": [round(r, 1) for r in runs]}
    return {"empty": summary(empty), "up_to_date": summary(current), "migrate_run_empty": summary(migrate)}


def wrk_command(port, path, token=None, script=None, seconds=SECONDS, connections=CONCURRENCY):
    """The wrk command line for one run; its script ends with the JSON report."""
    lua = OUT / (script or "wrk-plain.lua")
    body = (HERE / script).read_text() if script else ""
    lua.write_text(body + "\n" + (HERE / "wrk-report.lua").read_text())
    args = ["wrk", f"-t{min(THREADS, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(lua)]
    if token:
        args += ["-H", f"Authorization: Token {token}"]
    args.append(f"http://127.0.0.1:{port}{path}")
    return args


def wrk_result(output):
    match = re.search(r"^BENCH_JSON (.*)$", output, re.M)
    if not match:
        die(f"wrk printed no summary: {output[-500:]}")
    raw = json.loads(match.group(1))
    return {
        "requests_per_second": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "requests": raw["requests"],
        "non_2xx": raw["non_2xx"],
        "socket_errors": raw["socket_errors"],
    }


# The run-queue wait of the last wrk run's threads, sampled while it ran
# (a process's schedstat is gone once it exits): `with_sched` reports it.
LAST_WRK_SCHED = {}


def wrk(port, path, token=None, script=None, seconds=SECONDS, connections=CONCURRENCY, env=None):
    args = wrk_command(port, path, token, script, seconds, connections)
    process = subprocess.Popen(args, env={**os.environ, **(env or {})}, cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    threads = {}  # the newest sample of each thread: they exit one by one at the end
    while process.poll() is None:
        for task in Path(f"/proc/{process.pid}/task").glob("*"):
            try:
                threads[task.name] = [int(v) for v in (task / "schedstat").read_text().split()[:2]]
            except (OSError, ValueError):
                pass
        time.sleep(0.1)
    out, err = process.communicate()
    if process.returncode != 0:
        die(f"{' '.join(args)} failed: {err.strip()[-300:]}")
    LAST_WRK_SCHED.clear()
    LAST_WRK_SCHED["wrk"] = (sum(t[0] for t in threads.values()), sum(t[1] for t in threads.values()))
    return wrk_result(out)


def postmaster_pid():
    """The bench cluster's postmaster, from its pid file (None if unknown)."""
    try:
        lines = (Path(PG_ENV["CONDUIT_LOCAL_PG_DIR"]) / "data" / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    return int(lines[0]) if len(lines) > 3 and lines[3].strip() == PG_PORT else None


def sched_times(pids):
    """CPU time and run-queue wait (ns) of every thread of `pids`, summed by
    a group name: the server's threads by name (workers, conduit-db, hashing
    threads), PostgreSQL's processes together. /proc/<pid>/schedstat."""
    totals = {}
    for pid, group in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                run_ns, wait_ns, _ = (int(v) for v in (task / "schedstat").read_text().split())
                name = (task / "comm").read_text().strip()
            except (OSError, ValueError):
                continue
            key = group or re.sub(r"[-:]?\d+$", "", name)
            run, wait = totals.get(key, (0, 0))
            totals[key] = (run + run_ns, wait + wait_ns)
    return totals


def sched_pids(server_pid):
    pids = [(server_pid, None)]
    postmaster = postmaster_pid()
    if postmaster:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                pids.append((int(stat.parent.name), "postgres"))
        pids.append((postmaster, "postgres"))
    return pids


def with_sched(server_pid, measure):
    """Runs `measure()` (a wrk run) and adds, per request, the CPU time and
    the run-queue wait (time runnable but not running) of the server's
    threads, of PostgreSQL's processes and of wrk's threads (sampled every
    0.1 s while it ran, so the last tenth of a second is missing): where a
    contended run's extra latency is spent waiting for a core."""
    pids = sched_pids(server_pid)
    before = sched_times(pids)
    result = measure()
    after = {**sched_times(pids), **LAST_WRK_SCHED}
    requests = max(1, result["requests"])
    sched = {}
    for key, (run_ns, wait_ns) in after.items():
        run0, wait0 = before.get(key, (0, 0))
        sched[key] = {"cpu_us": round((run_ns - run0) / requests / 1000, 1),
                      "wait_us": round((wait_ns - wait0) / requests / 1000, 1)}
    return {**result, "sched": sched}


class Stress:
    """stress-ng keeping `STRESS_CPUS` cores busy at normal priority (the
    scheduler gives it the share any other process of the host would get)."""

    def __enter__(self):
        self.process = subprocess.Popen(
            ["stress-ng", "--cpu", str(STRESS_CPUS), "--cpu-method", "matrixprod", "--timeout", "600s", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
        )
        time.sleep(1)  # its workers forked and running
        return self

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def contended(port, path, token=None, script=None, server_pid=None):
    """The same load as the quiet run, while stress-ng keeps every core busy."""
    with Stress():
        wrk(port, path, token, script=script, seconds=WARMUP)
        if server_pid is None:
            return wrk(port, path, token, script=script)
        return with_sched(server_pid, lambda: wrk(port, path, token, script=script))


def load_average():
    return Path("/proc/loadavg").read_text().split()[0]


def capture_statements(port, path, token):
    """The SQL one request runs, with its parameters written in as literals,
    read from the cluster's statement log (log_statement = all)."""
    for _ in range(3):  # connections open and statements prepared first
        http(port, "GET", path, token=token)
    log = cluster_log()
    psql("ALTER SYSTEM SET log_statement = 'all'")
    psql("SELECT pg_reload_conf()")
    time.sleep(0.3)
    offset = log.stat().st_size
    status, _ = http(port, "GET", path, token=token)
    time.sleep(0.3)
    psql("ALTER SYSTEM RESET log_statement")
    psql("SELECT pg_reload_conf()")
    if status != 200:
        die(f"GET {path} answered {status} while capturing its SQL")
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return statements_from_log(text)


ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(\d+)\] (\w+):  (.*)$")


def statements_from_log(text):
    entries = []
    for line in text.splitlines():
        match = ENTRY.match(line)
        if match:
            entries.append([match.group(2), match.group(3)])
        elif entries:
            entries[-1][1] += "\n" + line
    statements = []
    for level, message in entries:
        if level == "LOG" and (m := re.match(r"(?:statement|execute [^:]*): (.*)", message, re.S)):
            sql = m.group(1).strip()
            if "pg_reload_conf" in sql or "log_statement" in sql:
                continue
            statements.append(sql)
        elif level == "DETAIL" and message.startswith("parameters: ") and statements:
            params = dict(re.findall(r"\$(\d+) = (NULL|'(?:[^']|'')*')", message))
            statements[-1] = re.sub(r"\$(\d+)\b", lambda p: params.get(p.group(1), p.group(0)), statements[-1])
    return statements


def pgbench_tps(pgbench, url, statements, name):
    script = OUT / f"pgbench-{name}.sql"
    script.write_text("".join(s.rstrip(";") + ";\n" for s in statements))
    output = run([pgbench, "-n", "-M", "prepared", f"-c{CONCURRENCY}", f"-j{THREADS}", f"-T{SECONDS}", "-f", str(script), url]).stdout
    match = re.search(r"tps = ([\d.]+)", output)
    if not match:
        die(f"pgbench printed no tps: {output[-500:]}")
    return float(match.group(1))


def login(port, email):
    status, body = http(port, "POST", "/api/users/login", {"user": {"email": email, "password": PASSWORD}})
    if status != 200:
        die(f"login of {email} answered {status}: {body[:200]}")
    return json.loads(body)["user"]["token"]


def machine():
    cpu = "unknown"
    try:
        cpu = re.search(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1)
    except (OSError, AttributeError):
        pass
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {
        "cpu": cpu,
        "cores": CORES,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "postgresql": psql("SHOW server_version"),
        "rustc": run(["rustc", "--version"]).stdout.strip(),
        "wrk": (run(["wrk", "-v"], check=False).stdout or "").splitlines()[0] if shutil.which("wrk") else "",
    }


# --- the run -----------------------------------------------------------------------


def main():
    # Everything here runs on the bench cluster: never on a DATABASE_URL
    # from outside (make exports the development one), which dev-db.sh's
    # create and drop would otherwise use.
    os.environ.pop("DATABASE_URL", None)
    OUT.mkdir(parents=True, exist_ok=True)
    pgbench = ensure_tools()
    build()
    step("starting the bench PostgreSQL cluster")
    dev_db("up")
    results = {"scale": SCALE, "seconds": SECONDS, "warmup_seconds": WARMUP, "concurrency": CONCURRENCY, "stress_cpus": STRESS_CPUS}
    try:
        results["machine"] = machine()
        step(f"boot and migration times ({BOOT_RUNS} runs each)")
        results["boot"] = measure_boot()

        step(f"loading the dataset at scale {SCALE}")
        url = recreate("bench")
        run([str(BIN / "conduit"), "migrate", "run"], env={"DATABASE_URL": url, "RUST_LOG": "warn"})
        dataset = json.loads(run([str(BIN / "conduit-bench"), "dataset", "--scale", str(SCALE)], env={"DATABASE_URL": url}).stdout)
        results["dataset"] = dataset
        step(f"loaded {dataset['rows']} rows in {dataset['load_seconds']:.1f} s ({dataset['rows_per_second']:.0f} rows/s)")
        results["hash"] = json.loads(run([str(BIN / "conduit-bench"), "hash-time"]).stdout)

        server = Server(url)
        server.wait_ready()
        time.sleep(1)
        results["memory_idle_kib"] = server.memory_kib()
        try:
            results["scenarios"], results["login"] = measure_scenarios(server, dataset, pgbench, url)
            results["memory_load_kib"] = server.memory_kib()
        finally:
            server.stop()
    finally:
        step("stopping the bench PostgreSQL cluster")
        dev_db("down")
    results["targets"] = targets(results)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = report(results)
    (OUT / "results.md").write_text(markdown)
    print(markdown)
    if os.environ.get("BENCH_WRITE_DOCS"):
        write_docs(markdown)


def measure_scenarios(server, dataset, pgbench, url):
    port = server.port
    reader = login(port, dataset["reader_email"])
    tag = dataset["popular_tag"]
    slug = dataset["sample_slug"]
    reads = [
        ("GET /api/user", "/api/user", reader),
        ("GET /api/articles", "/api/articles", None),
        ("GET /api/articles?tag=", f"/api/articles?tag={tag}", None),
        ("GET /api/articles/feed", "/api/articles/feed", reader),
        ("GET /api/articles/{slug}", f"/api/articles/{slug}", None),
        ("GET /api/articles/{slug}/comments", f"/api/articles/{slug}/comments", None),
    ]
    scenarios = []
    for name, path, token in reads:
        step(f"{name}: SQL, warm-up, {SECONDS} s at concurrency {CONCURRENCY}, then pgbench")
        statements = capture_statements(port, path, token)
        wrk(port, path, token, seconds=WARMUP)
        row = {"scenario": name, "load_average": load_average(),
               **with_sched(server.process.pid, lambda: wrk(port, path, token))}
        row["peak_rss_kib"] = server.memory_kib()["peak"]
        if CONTENTION:
            step(f"{name}: again while stress-ng --cpu {STRESS_CPUS} runs")
            row["contended"] = {"load_average": load_average(),
                                **contended(port, path, token, server_pid=server.process.pid)}
        row["statements"] = len(statements)
        tps = pgbench_tps(pgbench, url, statements, re.sub(r"\W+", "-", name.lower()).strip("-"))
        row["pgbench_tps"] = round(tps, 1)
        row["ratio_to_pgbench"] = round(row["requests_per_second"] / tps, 3)
        scenarios.append(row)

    step("POST /api/articles then DELETE")
    wrk(port, "/", reader, script="wrk-post-delete.lua", seconds=WARMUP)
    scenarios.append({"scenario": "POST /api/articles + DELETE", **wrk(port, "/", reader, script="wrk-post-delete.lua"),
                      "peak_rss_kib": server.memory_kib()["peak"]})

    # Measured before any login: logins still queued for a hashing slot
    # when a login run ends would slow the "quiet" figure.
    step("GET /api/user at a steady light load, alone")
    paced = {"BENCH_PACE_MS": "10"}
    quiet = wrk(port, "/api/user", reader, script="wrk-paced.lua", connections=4, env=paced)

    login_env = {"BENCH_LOGIN_USERS": ",".join(dataset["login_usernames"]), "BENCH_LOGIN_PASSWORD": PASSWORD}
    step("POST /api/users/login")
    wrk(port, "/", script="wrk-login.lua", seconds=WARMUP, env=login_env)
    logins = {"scenario": "POST /api/users/login", **wrk(port, "/", script="wrk-login.lua", env=login_env)}
    logins["peak_rss_kib"] = server.memory_kib()["peak"]
    scenarios.append(logins)

    step("GET /api/user at the same light load while logins run")
    background = subprocess.Popen(
        wrk_command(port, "/", script="wrk-login.lua", seconds=SECONDS + 2),
        env={**os.environ, **login_env}, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    time.sleep(1)
    busy = wrk(port, "/api/user", reader, script="wrk-paced.lua", connections=4, env=paced)
    logins_meanwhile = wrk_result(background.communicate()[0])

    # One account changing its password from ATTACKERS connections while
    # others log in: the changes have a budget and a lane of their own in
    # the hashing queue, so the logins must not answer 503. Before the
    # attack below, whose failed logins put this address in its backoff.
    step(f"POST /api/users/login while one account floods password changes from {ATTACKERS} connections")
    flooder = register(port, f"flood{os.getpid()}")
    flood = subprocess.Popen(
        wrk_command(port, "/", flooder, script="wrk-attack.lua", seconds=SECONDS + 2, connections=ATTACKERS),
        env={**os.environ, **login_env, "BENCH_ATTACK_MODE": "password-change"},
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    time.sleep(1)
    flooded_logins = wrk(port, "/", script="wrk-login.lua", connections=4, env=login_env)
    flood_result, flood_statuses = attack_result(flood)

    # Last: the attack leaves new accounts and a throttled address.
    step(f"GET /api/user at the same light load under attack: {ATTACKERS} connections registering or failing logins")
    attack_env = {**login_env, "BENCH_ATTACK_PREFIX": f"atk{os.getpid()}"}
    attacker = subprocess.Popen(
        wrk_command(port, "/", script="wrk-attack.lua", seconds=SECONDS + 2, connections=ATTACKERS),
        env={**os.environ, **attack_env}, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    time.sleep(1)
    attacked = wrk(port, "/api/user", reader, script="wrk-paced.lua", connections=4, env=paced)
    attack, statuses = attack_result(attacker)
    answered = max(1, sum(statuses.values()))

    figures = {
        "throughput_per_second": logins["requests_per_second"],
        "throughput_during_mix_per_second": logins_meanwhile["requests_per_second"],
        "user_p99_quiet_ms": quiet["p99_ms"],
        "user_p99_during_logins_ms": busy["p99_ms"],
        "user_requests_quiet": quiet["requests"],
        "user_requests_during_logins": busy["requests"],
        "user_non_2xx_during_logins": busy["non_2xx"],
        "user_p99_under_attack_ms": attacked["p99_ms"],
        "user_requests_under_attack": attacked["requests"],
        "user_non_2xx_under_attack": attacked["non_2xx"],
        "attack_requests_per_second": attack["requests_per_second"],
        "attack_p99_ms": attack["p99_ms"],
        "attack_statuses": statuses,
        "attack_429_share": round(statuses.get("429", 0) / answered, 3),
        "attack_503_share": round(statuses.get("503", 0) / answered, 3),
        "logins_under_password_flood_per_second": flooded_logins["requests_per_second"],
        "logins_under_password_flood_p99_ms": flooded_logins["p99_ms"],
        "logins_under_password_flood": flooded_logins["requests"],
        "logins_under_password_flood_non_2xx": flooded_logins["non_2xx"],
        "password_flood_requests_per_second": flood_result["requests_per_second"],
        "password_flood_statuses": flood_statuses,
    }
    return scenarios, figures


def attack_result(attacker):
    """An attacking wrk's summary and its answers by status."""
    output = attacker.communicate()[0]
    found = re.search(r"BENCH_STATUS (\{.*\})", output)
    return wrk_result(output), (json.loads(found.group(1)) if found else {})


def register(port, name):
    status, body = http(port, "POST", "/api/users",
                        {"user": {"username": name, "email": f"{name}@bench.conduit.example", "password": PASSWORD}})
    if status != 201:
        die(f"registration of {name} answered {status}: {body[:200]}")
    return json.loads(body)["user"]["token"]


def targets(results):
    def target(name, figure, met, detail):
        return {"target": name, "figure": figure, "met": bool(met), "detail": detail}

    rows = {row["scenario"]: row for row in results["scenarios"]}
    out = []
    user = rows["GET /api/user"]
    out.append(target("GET /api/user >= 70% of pgbench", f"{user['ratio_to_pgbench']:.0%}", user["ratio_to_pgbench"] >= 0.70,
                      f"{user['requests_per_second']:.0f} req/s vs {user['pgbench_tps']:.0f} tps for its {user['statements']} statements"))
    for name in ["GET /api/articles", "GET /api/articles?tag=", "GET /api/articles/feed", "GET /api/articles/{slug}/comments"]:
        row = rows[name]
        out.append(target(f"{name} p99 < 25 ms at c{CONCURRENCY}", f"{row['p99_ms']:.1f} ms", row["p99_ms"] < 25,
                          "default dataset" if SCALE >= 1 else f"scale {SCALE}: below the target's dataset"))
    for row in results["scenarios"]:
        if "contended" not in row:
            continue
        c = row["contended"]
        out.append(target(f"{row['scenario']} under contention: p99 <= 3x quiet, max < 1 s",
                          f"{c['p99_ms']:.1f} vs {row['p99_ms']:.1f} ms, max {c['max_ms']:.0f} ms",
                          c["p99_ms"] <= 3 * row["p99_ms"] and c["max_ms"] < 1000,
                          f"stress-ng --cpu {STRESS_CPUS} during the run"))
    boot = results["boot"]
    out.append(target("boot to /ready, up to date < 15 ms", f"{boot['up_to_date']['median_ms']} ms", boot["up_to_date"]["median_ms"] < 15, f"median of {BOOT_RUNS}"))
    out.append(target("boot to /ready, empty database < 50 ms", f"{boot['empty']['median_ms']} ms", boot["empty"]["median_ms"] < 50, f"median of {BOOT_RUNS}"))
    idle = results["memory_idle_kib"]["peak"] / 1024
    load = results["memory_load_kib"]["peak"] / 1024
    out.append(target("peak RSS idle < 20 MiB", f"{idle:.1f} MiB", idle < 20, "VmHWM after boot"))
    out.append(target("peak RSS under load < 80 MiB", f"{load:.1f} MiB", load < 80, "VmHWM after every scenario"))
    login = results["login"]
    ceiling = CORES / (results["hash"]["median_ms"] / 1000)
    out.append(target("login throughput >= 90% of cores / hash time", f"{login['throughput_per_second'] / ceiling:.0%}",
                      login["throughput_per_second"] >= 0.9 * ceiling,
                      f"{login['throughput_per_second']:.1f}/s vs {CORES} cores / {results['hash']['median_ms']:.1f} ms = {ceiling:.1f}/s; "
                      f"{CORES} threads hashing flat out, no server: {results['hash']['all_cores_per_second']:.1f}/s"))
    out.append(target("GET /api/user p99 during logins <= 2x quiet", f"{login['user_p99_during_logins_ms']:.2f} vs {login['user_p99_quiet_ms']:.2f} ms",
                      login["user_p99_during_logins_ms"] <= 2 * login["user_p99_quiet_ms"],
                      f"4 connections pacing 10 ms; {CONCURRENCY} concurrent logins"))
    out.append(target("GET /api/user p99 under attack <= 2x quiet", f"{login['user_p99_under_attack_ms']:.2f} vs {login['user_p99_quiet_ms']:.2f} ms",
                      login["user_p99_under_attack_ms"] <= 2 * login["user_p99_quiet_ms"],
                      f"4 connections pacing 10 ms; {ATTACKERS} connections registering or failing logins"))
    out.append(target("logins under a password-change flood: no non-2xx",
                      f"{login['logins_under_password_flood_non_2xx']} of {login['logins_under_password_flood']}",
                      login["logins_under_password_flood_non_2xx"] == 0,
                      f"4 connections logging in; one account changing its password from {ATTACKERS} connections "
                      f"({login['password_flood_statuses']})"))
    return out


def waited(run, who):
    """Run-queue wait per request (µs), from `with_sched`, of "postgres",
    "wrk" or the server (every other group); '?' when not measured."""
    sched = run.get("sched")
    if not sched:
        return "?"
    mine = lambda group: group == who if who in ("postgres", "wrk") else group not in ("postgres", "wrk")
    return f"{sum(v['wait_us'] for group, v in sched.items() if mine(group)):.0f}"


def report(r):
    m = r["machine"]
    d = r["dataset"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; PostgreSQL {m['postgresql']}; {m['rustc']}; {m['wrk']}",
        f"Dataset (scale {r['scale']}): {d['users']} users, {d['follows']} follows, {d['articles']} articles, {d['tags']} tags, "
        f"{d['article_tags']} article tags, {d['favorites']} favorites, {d['comments']} comments: {d['rows']} rows in {d['load_seconds']:.1f} s "
        f"({d['rows_per_second']:.0f} rows/s), then VACUUM ANALYZE and CHECKPOINT {d['vacuum_analyze_seconds']:.1f} s",
        f"Load: wrk, {THREADS} threads, {r['concurrency']} connections, {r['warmup_seconds']} s warm-up then {r['seconds']} s; "
        f"pgbench -M prepared at the same concurrency on the SQL each endpoint ran.",
        "",
        "| Scenario | req/s | p50 ms | p99 ms | max ms | non-2xx | SQL statements | pgbench tps | endpoint / pgbench |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["scenarios"]:
        lines.append(
            f"| {row['scenario']} | {row['requests_per_second']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.1f} | "
            f"{row['non_2xx'] + row['socket_errors']} | {row.get('statements', '')} | {row.get('pgbench_tps', '')} | "
            f"{format(row['ratio_to_pgbench'], '.0%') if 'ratio_to_pgbench' in row else ''} |"
        )
    contended = [row for row in r["scenarios"] if "contended" in row]
    if contended:
        lines += [
            "",
            f"Under contention: the same load while `stress-ng --cpu {r.get('stress_cpus', CORES)}` keeps every core busy "
            "(load average at the start of each run in brackets).",
            "",
            "| Scenario | quiet req/s | quiet p50 / p99 / max ms | contended req/s | contended p50 / p99 / max ms | p99 contended / quiet "
            "| waiting for a core per request, µs, quiet / contended: server threads | PostgreSQL | wrk |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in contended:
            c = row["contended"]
            lines.append(
                f"| {row['scenario']} | {row['requests_per_second']:.0f} ({row.get('load_average', '?')}) | "
                f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f} / {row['max_ms']:.1f} | {c['requests_per_second']:.0f} ({c.get('load_average', '?')}) | "
                f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f} / {c['max_ms']:.1f} | {c['p99_ms'] / max(row['p99_ms'], 0.001):.1f}x | "
                + " | ".join(f"{waited(row, who)} / {waited(c, who)}" for who in ("server", "postgres", "wrk")) + " |"
            )
        lines += [
            "",
            "Waiting for a core: the time the threads were runnable but not running (`/proc/<pid>/task/*/schedstat`), "
            "summed over the server's threads, over PostgreSQL's processes or over wrk's threads, divided by the requests of the run.",
        ]
    b = r["boot"]
    login = r["login"]
    lines += [
        "",
        f"Boot to /ready, median of {len(b['empty']['runs_ms'])}: empty database {b['empty']['median_ms']} ms, "
        f"up to date {b['up_to_date']['median_ms']} ms; `conduit migrate run` alone on an empty database {b['migrate_run_empty']['median_ms']} ms.",
        f"Memory: idle RSS {r['memory_idle_kib']['rss'] / 1024:.1f} MiB (peak {r['memory_idle_kib']['peak'] / 1024:.1f} MiB); "
        f"peak under load {r['memory_load_kib']['peak'] / 1024:.1f} MiB.",
        f"Login: one argon2id hash {r['hash']['median_ms']:.1f} ms ({r['hash']['all_cores_per_second']:.1f}/s with every core hashing); "
        f"{login['throughput_per_second']:.1f} logins/s at c{r['concurrency']}; "
        f"GET /api/user p99 {login['user_p99_quiet_ms']:.2f} ms alone, {login['user_p99_during_logins_ms']:.2f} ms while logins run "
        f"({login['throughput_during_mix_per_second']} logins/s meanwhile).",
        f"Under attack ({ATTACKERS} connections registering or logging in with wrong passwords, "
        f"{login['attack_requests_per_second']:.0f} req/s): GET /api/user p99 {login['user_p99_under_attack_ms']:.2f} ms "
        f"({login['user_non_2xx_under_attack']} non-2xx of {login['user_requests_under_attack']}); attackers' answers "
        f"{login['attack_429_share']:.0%} 429, {login['attack_503_share']:.0%} 503 ({login['attack_statuses']}), "
        f"p99 {login['attack_p99_ms']:.1f} ms. "
        f"Under a flood of one account's password changes ({ATTACKERS} connections, "
        f"{login['password_flood_requests_per_second']:.0f} req/s, answers {login['password_flood_statuses']}): "
        f"logins of others {login['logins_under_password_flood_per_second']:.1f}/s, p99 "
        f"{login['logins_under_password_flood_p99_ms']:.1f} ms, {login['logins_under_password_flood_non_2xx']} non-2xx "
        f"of {login['logins_under_password_flood']}.",
        "",
        "| Target | Figure | Met | How |",
        "|---|---:|:---:|---|",
    ]
    for t in r["targets"]:
        lines.append(f"| {t['target']} | {t['figure']} | {'yes' if t['met'] else '**no**'} | {t['detail']} |")
    return "\n".join(lines) + "\n"


def write_docs(markdown):
    docs = ROOT / "docs" / "benchmarks.md"
    text = docs.read_text()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    docs.write_text(f"{head}{begin}\n{markdown}{end}{tail}")
    step(f"updated {docs.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
