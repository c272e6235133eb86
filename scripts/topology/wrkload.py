"""The load: wrk in the background with the bench's report script, its
counts, and the timed steps of a scenario taken under it."""

import json
import os
import subprocess
import time

from context import CONCURRENCY, OUT, ROOT, SECONDS, at, die, log, started


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
