#!/usr/bin/env python3
"""Paired comparison of two or more server binaries on the bench dataset:
rounds that alternate the binaries (A B, then B A, ...), each serving the
same scenarios, quiet and (BENCH_CONTENTION=1, the default) while
stress-ng keeps every core busy. Medians per binary and scenario, with
the load average at the start of each run.

    BENCH_PAIR=before:target/pair/conduit-before,after:target/release/conduit \\
    BENCH_PAIR_SCENARIOS=user,feed BENCH_PAIR_ROUNDS=3 scripts/bench/pair.py

Scenarios: user, articles, tag, feed, article (signed in as the reader),
article-anon (the same article, anonymous), comments, boot (boot to
/ready on the up-to-date database) and boot-empty (boot to /ready on a
database created empty just before, as `make bench` measures it):
BENCH_BOOT_RUNS boots per binary and round, the binaries alternating boot
by boot (A B A B ..., B A B A ... the next round). The dataset
BENCH_PAIR_ENV_<name>="K=V K=V" gives one binary extra environment (a
setting to compare, e.g. CONDUIT_DB_POOL_SIZE=32). The dataset
is loaded once per scale and kept in the bench cluster's `bench_pair`
database (BENCH_PAIR_RELOAD=1 loads it again). Same knobs as bench.py
otherwise (BENCH_SCALE, BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_PG_PORT).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import settings  # noqa: E402
from cluster import database_url, dev_db, psql, recreate  # noqa: E402
from loadgen import contended, load_average, with_sched, wrk  # noqa: E402
from server import Server, free_port, login  # noqa: E402
from settings import die, run, step  # noqa: E402
from tools import ensure_tools  # noqa: E402


def scenario_paths(dataset, reader):
    return {
        "user": ("/api/user", reader),
        "articles": ("/api/articles", None),
        "tag": (f"/api/articles?tag={dataset['popular_tag']}", None),
        "feed": ("/api/articles/feed", reader),
        "article": (f"/api/articles/{dataset['sample_slug']}", reader),
        "article-anon": (f"/api/articles/{dataset['sample_slug']}", None),
        "comments": (f"/api/articles/{dataset['sample_slug']}/comments", None),
    }


def dataset_for(url_name):
    marker = settings.OUT / f"pair-dataset-{settings.SCALE}.json"
    exists = psql(f"SELECT count(*) FROM pg_database WHERE datname = '{url_name}'") == "1"
    if marker.exists() and exists and os.environ.get("BENCH_PAIR_RELOAD") != "1":
        return json.loads(marker.read_text()), database_url(url_name)
    url = recreate(url_name)
    run([str(settings.BIN / "conduit"), "migrate", "run"], env={"DATABASE_URL": url, "RUST_LOG": "warn"})
    dataset = json.loads(run([str(settings.BIN / "conduit-bench"), "dataset", "--scale", str(settings.SCALE)],
                                   env={"DATABASE_URL": url}).stdout)
    marker.write_text(json.dumps(dataset))
    return dataset, url


def main():
    os.environ.pop("DATABASE_URL", None)
    settings.OUT.mkdir(parents=True, exist_ok=True)
    pairs = [item.split(":", 1) for item in os.environ.get("BENCH_PAIR", "").split(",") if item]
    if len(pairs) < 2:
        die("BENCH_PAIR=name:binary,name:binary (two or more)")
    wanted = os.environ.get("BENCH_PAIR_SCENARIOS", "user,articles,tag,feed,article,comments").split(",")
    rounds = int(os.environ.get("BENCH_PAIR_ROUNDS", "3"))
    ensure_tools()
    dev_db("up")
    results = {name: {} for name, _ in pairs}
    try:
        dataset, url = dataset_for("bench_pair")
        for round_no in range(rounds):
            order = pairs if round_no % 2 == 0 else list(reversed(pairs))
            for scenario in BOOTS:
                if scenario in wanted:
                    measure_boots(scenario, order, url, results)
            for name, binary in order:
                settings.BIN = Path(binary).resolve().parent
                conduit = Path(binary).resolve()
                reads = [w for w in wanted if w not in BOOTS]
                if not reads:
                    continue
                server = server_for(conduit, url, name)
                server.wait_ready()
                reader = login(server.port, dataset["reader_email"])
                paths = scenario_paths(dataset, reader)
                try:
                    for scenario in reads:
                        path, token = paths[scenario]
                        step(f"round {round_no + 1}: {name} {scenario}")
                        wrk(server.port, path, token, seconds=settings.WARMUP)
                        load = load_average()
                        quiet = with_sched(server.process.pid, lambda: wrk(server.port, path, token))
                        results[name].setdefault(scenario, []).append({**quiet, "load": load})
                        if settings.CONTENTION:
                            load = load_average()
                            busy = contended(server.port, path, token, server_pid=server.process.pid)
                            results[name].setdefault(scenario + " contended", []).append({**busy, "load": load})
                finally:
                    server.stop()
    finally:
        dev_db("down")
    (settings.OUT / "pair.json").write_text(json.dumps(results, indent=2) + "\n")
    print(report(results, [name for name, _ in pairs]))


BOOTS = ("boot", "boot-empty")


def measure_boots(scenario, order, url, results):
    """BENCH_BOOT_RUNS boots per binary, alternating binaries boot by boot:
    on the up-to-date `url` ("boot"), or each on a database created empty
    just before, as bench.py's measure_boot does ("boot-empty")."""
    step(f"{scenario}: {settings.BOOT_RUNS} boots per binary")
    for _ in range(settings.BOOT_RUNS):
        for name, binary in order:
            target = recreate("bench_pair_boot") if scenario == "boot-empty" else url
            server = server_for(Path(binary).resolve(), target, name)
            results[name].setdefault(scenario, []).append({"ms": server.wait_ready() * 1000, "load": load_average()})
            server.stop()
    if scenario == "boot-empty":
        dev_db("drop", "bench_pair_boot")


def server_for(conduit, url, name):
    settings.BIN = conduit.parent
    server = Server.__new__(Server)
    # Server starts BIN/conduit; a renamed binary needs its own path.
    server.port = free_port()
    server.log = tempfile.NamedTemporaryFile(prefix="conduit-pair-", suffix=".log", delete=False)
    env = {**os.environ, "DATABASE_URL": url, "CONDUIT_LISTEN": f"127.0.0.1:{server.port}",
           "CONDUIT_LOG_FORMAT": "json", "RUST_LOG": "info"}
    env.update(item.split("=", 1) for item in os.environ.get(f"BENCH_PAIR_ENV_{name}", "").split())
    server.started = time.perf_counter()
    server.process = subprocess.Popen([str(conduit), "serve"], env=env, stdout=server.log, stderr=server.log)
    return server


def report(results, names):
    lines = [
        f"scale {settings.SCALE}, {settings.SECONDS} s per run, c{settings.CONCURRENCY}; medians over rounds; load average at the start of each run in brackets",
        "",
        "| scenario | " + " | ".join(f"{n} req/s | {n} p50 / p99 / max ms" for n in names) + " |",
        "|---|" + "---:|---:|" * len(names),
    ]
    scenarios = []
    for name in names:
        for scenario in results[name]:
            if scenario not in scenarios:
                scenarios.append(scenario)
    for scenario in scenarios:
        cells = []
        for name in names:
            runs = results[name].get(scenario, [])
            if not runs:
                cells += ["", ""]
                continue
            loads = "/".join(str(r["load"]) for r in runs)
            if scenario in BOOTS:
                loads = "/".join(str(r["load"]) for r in runs[:: settings.BOOT_RUNS])
                cells += [f"median {statistics.median(r['ms'] for r in runs):.1f} ms ({len(runs)} boots)", f"({loads})"]
                continue
            med = lambda key: statistics.median(r[key] for r in runs)
            cells += [f"{med('requests_per_second'):.0f} ({loads})",
                      f"{med('p50_ms'):.2f} / {med('p99_ms'):.2f} / {med('max_ms'):.1f}"]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    lines += ["", "Per request, medians over rounds: CPU time / time runnable but waiting for a core (µs), "
              "by thread of the server (workers, conduit-db), for PostgreSQL's processes together, and for wrk", "",
              "| scenario | binary | " + " | ".join(SCHED_GROUPS) + " |", "|---|---|" + "---:|" * len(SCHED_GROUPS)]
    for scenario in scenarios:
        for name in names:
            runs = [r["sched"] for r in results[name].get(scenario, []) if "sched" in r]
            if not runs:
                continue
            cells = []
            for group in SCHED_GROUPS:
                values = [r[group] for r in runs if group in r]
                cells.append(f"{statistics.median(v['cpu_us'] for v in values):.0f} / "
                             f"{statistics.median(v['wait_us'] for v in values):.0f}" if values else "")
            lines.append(f"| {scenario} | {name} | " + " | ".join(cells) + " |")
    # Boots alternate one by one, so the i-th boot of each binary ran side
    # by side: their differences cancel most of the host's drift.
    for scenario in [s for s in scenarios if s in BOOTS]:
        base = [r["ms"] for r in results[names[0]].get(scenario, [])]
        for name in names[1:]:
            other = [r["ms"] for r in results[name].get(scenario, [])]
            deltas = [b - a for a, b in zip(base, other)]
            if deltas:
                faster = sum(d < 0 for d in deltas)
                lines.append(f"\n{scenario}: {name} - {names[0]}, median of {len(deltas)} paired differences "
                             f"{statistics.median(deltas):+.1f} ms; {name} faster in {faster} of {len(deltas)} pairs")
    return "\n".join(lines) + "\n"


# Thread names as /proc shows them (15 characters): actix's workers are
# "actix-rt|system", the runtime driving the database sockets "conduit-db".
SCHED_GROUPS = ["actix-rt|system", "conduit-db", "postgres", "wrk"]


if __name__ == "__main__":
    main()
