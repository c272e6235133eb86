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

import json
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import conduit_scripts  # noqa: E402
import context as ctx  # noqa: E402
from balancer import haproxy_config, wait_balancer  # noqa: E402
from context import CONCURRENCY, LB_PORT, OUT, REPLICA_PORTS, ROOT, PG_ENV, SECONDS  # noqa: E402
from context import at, check_deadline, dev_db, die, enter, log, results, run, started, where  # noqa: E402
from pgbouncer import scenario_pgbouncer  # noqa: E402
from replica import Replica  # noqa: E402
from roll import scenario_roll  # noqa: E402
from scenarios import scenario_sigkill, scenario_sigterm, seed  # noqa: E402
from setup import check_ports, ensure_hurl, ensure_tools  # noqa: E402


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
        conduit_scripts.stop(process, timeout=15)
    try:
        dev_db("down")
    except subprocess.CalledProcessError:
        pass


def main():
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
    ctx.DB_URL = dev_db("url", capture=True)
    run([str(ROOT / "scripts" / "dev-db.sh"), "reset"], env={**PG_ENV, "DATABASE_URL": ctx.DB_URL})
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
