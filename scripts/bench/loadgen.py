"""The load: wrk runs and their summaries, stress-ng keeping every core
busy, and the CPU time and run-queue wait of the threads involved."""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import conduit_scripts
from cluster import postmaster_pid
from settings import CONCURRENCY, HERE, OUT, ROOT, SECONDS, STRESS_CPUS, THREADS, WARMUP, die


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
        conduit_scripts.stop(self.process, timeout=10)


def contended(port, path, token=None, script=None, server_pid=None):
    """The same load as the quiet run, while stress-ng keeps every core busy."""
    with Stress():
        wrk(port, path, token, script=script, seconds=WARMUP)
        if server_pid is None:
            return wrk(port, path, token, script=script)
        return with_sched(server_pid, lambda: wrk(port, path, token, script=script))


def load_average():
    return Path("/proc/loadavg").read_text().split()[0]


def attack_result(attacker):
    """An attacking wrk's summary and its answers by status."""
    output = attacker.communicate()[0]
    found = re.search(r"BENCH_STATUS (\{.*\})", output)
    return wrk_result(output), (json.loads(found.group(1)) if found else {})
