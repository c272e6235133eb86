"""What the bench needs before it starts: wrk, stress-ng, pgbench and psql
(installed from Debian's packages when root), the release binaries, and
a description of the machine."""

import os
import platform
import re
import shutil
from pathlib import Path

from cluster import psql
from settings import CONTENTION, CORES, die, run, step


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
