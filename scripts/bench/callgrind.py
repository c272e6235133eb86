#!/usr/bin/env python3
"""Instructions per request under callgrind, for the small per-request
costs a noisy shared host hides from wrk: the binary serves N requests on
one keep-alive connection, then 5 N; the difference divided by 4 N is what
one request costs, boot and warm-up excluded.

    CALLGRIND_BINARIES=target/pair/conduit-before,target/release/conduit \\
    CALLGRIND_PATH=user CALLGRIND_REQUESTS=400 scripts/bench/callgrind.py

CALLGRIND_RUST_LOG (info) sets the server's RUST_LOG. Uses pair.py's dataset (BENCH_SCALE, BENCH_PG_PORT); needs valgrind.
"""

import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from cluster import dev_db  # noqa: E402
from server import free_port, login, ready_status  # noqa: E402
from settings import die  # noqa: E402
import pair  # noqa: E402


def instructions(binary, url, path, token, count):
    port = free_port()
    out = tempfile.mktemp(prefix="callgrind-", suffix=".out")
    env = {**os.environ, "DATABASE_URL": url, "CONDUIT_LISTEN": f"127.0.0.1:{port}",
           "CONDUIT_LOG_FORMAT": "json", "RUST_LOG": os.environ.get("CALLGRIND_RUST_LOG", "info")}
    log = open(tempfile.mktemp(prefix="callgrind-", suffix=".log"), "w")
    process = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary), "serve"],
                               env=env, stdout=log, stderr=log)
    deadline = time.time() + 120
    while not ready_status(port).startswith(b"HTTP/1.1 200"):
        if time.time() > deadline or process.poll() is not None:
            die(f"{binary} under valgrind did not become ready")
        time.sleep(0.2)
    headers = {"Authorization": f"Token {token}"} if token else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(count):
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            die(f"GET {path} answered {response.status}")
    conn.close()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    text = Path(out).read_text(errors="replace")
    total = sum(int(m) for m in re.findall(r"^summary: (\d+)", text, re.M)) or sum(
        int(m) for m in re.findall(r"^totals: (\d+)", text, re.M))
    if os.environ.get("CALLGRIND_KEEP"):
        print(f"kept {out}", file=sys.stderr)
    else:
        for extra in Path(out).parent.glob(Path(out).name + "*"):
            extra.unlink()
    return total


def main():
    os.environ.pop("DATABASE_URL", None)
    binaries = [Path(b) for b in os.environ["CALLGRIND_BINARIES"].split(",")]
    scenario = os.environ.get("CALLGRIND_PATH", "user")
    n = int(os.environ.get("CALLGRIND_REQUESTS", "400"))
    dev_db("up")
    try:
        dataset, url = pair.dataset_for("bench_pair")
        probe = pair.server_for(binaries[0].resolve(), url, "probe")
        probe.wait_ready()
        reader = login(probe.port, dataset["reader_email"])
        probe.stop()
        path, token = pair.scenario_paths(dataset, reader)[scenario]
        for binary in binaries:
            small = instructions(binary, url, path, token, n)
            large = instructions(binary, url, path, token, 5 * n)
            print(f"{binary}: GET {scenario}: {(large - small) / (4 * n):,.0f} instructions per request "
                  f"({small:,} for {n}, {large:,} for {5 * n})", flush=True)
    finally:
        dev_db("down")


if __name__ == "__main__":
    main()
