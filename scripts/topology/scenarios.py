"""The seed data, and the scenarios that stop a replica under load:
SIGTERM (zero failures) and SIGKILL (at most what was in flight)."""

import signal
import time

from balancer import wait_balancer
from context import REPLICA_PORTS, SEED, at, die, enter, http, log, results
from replica import Replica
from wrkload import Load, balanced_logs, figures, step


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
