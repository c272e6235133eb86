"""The bench's paths, knobs (environment variables, see bench.py) and the
cluster's settings; ending the run, saying what it does, running commands."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import conduit_scripts  # noqa: E402


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
    conduit_scripts.die("bench", message)


def step(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run(args, env=None, capture=True, check=True):
    """`args` from the checkout, with `env` on top of this environment;
    a failure with check ends the run naming the end of its stderr."""
    try:
        return conduit_scripts.run(args, env=conduit_scripts.environment(env), cwd=ROOT,
                                   capture=capture, check=check)
    except conduit_scripts.CommandFailed as failed:
        detail = (failed.stderr or "").strip().splitlines()[-5:]
        die(f"{' '.join(map(str, args))} failed: " + " / ".join(detail))
