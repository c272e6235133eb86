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
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import settings  # noqa: E402
from cluster import dev_db, recreate  # noqa: E402
from report import report, targets, write_docs  # noqa: E402
from scenarios import measure_boot, measure_scenarios  # noqa: E402
from server import Server  # noqa: E402
from settings import BOOT_RUNS, CONCURRENCY, OUT, SCALE, SECONDS, STRESS_CPUS, WARMUP, run, step  # noqa: E402
from tools import build, ensure_tools, machine  # noqa: E402


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
        run([str(settings.BIN / "conduit"), "migrate", "run"], env={"DATABASE_URL": url, "RUST_LOG": "warn"})
        dataset = json.loads(run([str(settings.BIN / "conduit-bench"), "dataset", "--scale", str(SCALE)], env={"DATABASE_URL": url}).stdout)
        results["dataset"] = dataset
        step(f"loaded {dataset['rows']} rows in {dataset['load_seconds']:.1f} s ({dataset['rows_per_second']:.0f} rows/s)")
        results["hash"] = json.loads(run([str(settings.BIN / "conduit-bench"), "hash-time"]).stdout)

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


if __name__ == "__main__":
    main()
