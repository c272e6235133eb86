"""What every part of the topology test shares: its ports, paths and
knobs, the processes it started and the results so far, where the run
is (for a failure to name), and running commands, psql and HTTP."""

import os
import subprocess
import time
from pathlib import Path

import conduit_scripts


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
# The run's database, once PostgreSQL is up (main sets it).
DB_URL = None


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


def log_tails(logs):
    """The last lines of each log, as die() prints them."""
    lines = []
    for path in logs:
        path = Path(path)
        try:
            tail = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError as error:
            tail = [f"(cannot read it: {error})"]
        lines.append(f"topology:   read {path}; its last lines:")
        lines += [f"topology:   | {line[:400]}" for line in tail]
    return "".join("\n" + line for line in lines)


def die(message, logs=()):
    """Fails the run, naming the scenario and step, the figures (in
    `message`) and the logs to read, whose last lines it prints."""
    conduit_scripts.die("topology", f"FAILED in {where()}: {message}{log_tails(logs)}")


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


def run(args, env=None, capture=False):
    # Never the caller's DATABASE_URL (make exports the test cluster's):
    # this run resets its own database and must not reach another.
    return conduit_scripts.run(args, env=conduit_scripts.environment(env, drop=("DATABASE_URL",)), capture=capture)


def dev_db(*args, capture=False):
    result = run([str(ROOT / "scripts" / "dev-db.sh"), *args], env=PG_ENV, capture=capture)
    return result.stdout.strip() if capture else None


def psql(sql):
    return conduit_scripts.psql(sql, DB_URL)


def http(method, url, body=None, token=None, timeout=10):
    """(status, JSON body or None); status 0 when nothing answered. The body
    of an error says why (a 503's reason), for a failure to print."""
    try:
        status, raw = conduit_scripts.http(method, url, body, token, timeout)
    except OSError:
        return 0, None
    return status, conduit_scripts.json_or(raw or b"null", None)
