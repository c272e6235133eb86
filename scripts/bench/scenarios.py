"""The measurements: boot and migration times, then every scenario on the
loaded dataset (reads against pgbench, quiet and contended; writes;
logins alone, among reads, under a password-change flood and under attack)."""

import os
import re
import statistics
import subprocess
import time

import settings
from cluster import dev_db, recreate
from loadgen import attack_result, contended, load_average, with_sched, wrk, wrk_command, wrk_result
from server import Server, login, register
from settings import ATTACKERS, BOOT_RUNS, CONCURRENCY, CONTENTION, PASSWORD, ROOT, SECONDS, STRESS_CPUS, WARMUP, run, step
from statements import capture_statements, pgbench_tps


def measure_boot():
    """Boot to /ready on an empty database, then on the same, now up to
    date, database; and `conduit migrate run` alone on an empty one."""
    empty, current, migrate = [], [], []
    for _ in range(BOOT_RUNS):
        url = recreate("bench_boot")
        server = Server(url)
        empty.append(server.wait_ready() * 1000)
        server.stop()
        server = Server(url)
        current.append(server.wait_ready() * 1000)
        server.stop()
        url = recreate("bench_boot")
        started = time.perf_counter()
        run([str(settings.BIN / "conduit"), "migrate", "run"], env={"DATABASE_URL": url, "RUST_LOG": "warn"})
        migrate.append((time.perf_counter() - started) * 1000)
    dev_db("drop", "bench_boot")
    summary = lambda runs: {"median_ms": round(statistics.median(runs), 1), "runs_ms": [round(r, 1) for r in runs]}
    return {"empty": summary(empty), "up_to_date": summary(current), "migrate_run_empty": summary(migrate)}


def measure_scenarios(server, dataset, pgbench, url):
    port = server.port
    reader = login(port, dataset["reader_email"])
    tag = dataset["popular_tag"]
    slug = dataset["sample_slug"]
    reads = [
        ("GET /api/user", "/api/user", reader),
        ("GET /api/articles", "/api/articles", None),
        ("GET /api/articles?tag=", f"/api/articles?tag={tag}", None),
        ("GET /api/articles/feed", "/api/articles/feed", reader),
        ("GET /api/articles/{slug}", f"/api/articles/{slug}", None),
        ("GET /api/articles/{slug}/comments", f"/api/articles/{slug}/comments", None),
    ]
    scenarios = []
    for name, path, token in reads:
        step(f"{name}: SQL, warm-up, {SECONDS} s at concurrency {CONCURRENCY}, then pgbench")
        statements = capture_statements(port, path, token)
        wrk(port, path, token, seconds=WARMUP)
        row = {"scenario": name, "load_average": load_average(),
               **with_sched(server.process.pid, lambda: wrk(port, path, token))}
        row["peak_rss_kib"] = server.memory_kib()["peak"]
        if CONTENTION:
            step(f"{name}: again while stress-ng --cpu {STRESS_CPUS} runs")
            row["contended"] = {"load_average": load_average(),
                                **contended(port, path, token, server_pid=server.process.pid)}
        row["statements"] = len(statements)
        tps = pgbench_tps(pgbench, url, statements, re.sub(r"\W+", "-", name.lower()).strip("-"))
        row["pgbench_tps"] = round(tps, 1)
        row["ratio_to_pgbench"] = round(row["requests_per_second"] / tps, 3)
        scenarios.append(row)

    step("POST /api/articles then DELETE")
    wrk(port, "/", reader, script="wrk-post-delete.lua", seconds=WARMUP)
    scenarios.append({"scenario": "POST /api/articles + DELETE", **wrk(port, "/", reader, script="wrk-post-delete.lua"),
                      "peak_rss_kib": server.memory_kib()["peak"]})

    # Measured before any login: logins still queued for a hashing slot
    # when a login run ends would slow the "quiet" figure.
    step("GET /api/user at a steady light load, alone")
    paced = {"BENCH_PACE_MS": "10"}
    quiet = wrk(port, "/api/user", reader, script="wrk-paced.lua", connections=4, env=paced)

    login_env = {"BENCH_LOGIN_USERS": ",".join(dataset["login_usernames"]), "BENCH_LOGIN_PASSWORD": PASSWORD}
    step("POST /api/users/login")
    wrk(port, "/", script="wrk-login.lua", seconds=WARMUP, env=login_env)
    logins = {"scenario": "POST /api/users/login", **wrk(port, "/", script="wrk-login.lua", env=login_env)}
    logins["peak_rss_kib"] = server.memory_kib()["peak"]
    scenarios.append(logins)

    step("GET /api/user at the same light load while logins run")
    background = subprocess.Popen(
        wrk_command(port, "/", script="wrk-login.lua", seconds=SECONDS + 2),
        env={**os.environ, **login_env}, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    time.sleep(1)
    busy = wrk(port, "/api/user", reader, script="wrk-paced.lua", connections=4, env=paced)
    logins_meanwhile = wrk_result(background.communicate()[0])

    # One account changing its password from ATTACKERS connections while
    # others log in: the changes have a budget and a lane of their own in
    # the hashing queue, so the logins must not answer 503. Before the
    # attack below, whose failed logins put this address in its backoff.
    step(f"POST /api/users/login while one account floods password changes from {ATTACKERS} connections")
    flooder = register(port, f"flood{os.getpid()}")
    flood = subprocess.Popen(
        wrk_command(port, "/", flooder, script="wrk-attack.lua", seconds=SECONDS + 2, connections=ATTACKERS),
        env={**os.environ, **login_env, "BENCH_ATTACK_MODE": "password-change"},
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    time.sleep(1)
    flooded_logins = wrk(port, "/", script="wrk-login.lua", connections=4, env=login_env)
    flood_result, flood_statuses = attack_result(flood)

    # Last: the attack leaves new accounts and a throttled address.
    step(f"GET /api/user at the same light load under attack: {ATTACKERS} connections registering or failing logins")
    attack_env = {**login_env, "BENCH_ATTACK_PREFIX": f"atk{os.getpid()}"}
    attacker = subprocess.Popen(
        wrk_command(port, "/", script="wrk-attack.lua", seconds=SECONDS + 2, connections=ATTACKERS),
        env={**os.environ, **attack_env}, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    time.sleep(1)
    attacked = wrk(port, "/api/user", reader, script="wrk-paced.lua", connections=4, env=paced)
    attack, statuses = attack_result(attacker)
    answered = max(1, sum(statuses.values()))

    figures = {
        "throughput_per_second": logins["requests_per_second"],
        "throughput_during_mix_per_second": logins_meanwhile["requests_per_second"],
        "user_p99_quiet_ms": quiet["p99_ms"],
        "user_p99_during_logins_ms": busy["p99_ms"],
        "user_requests_quiet": quiet["requests"],
        "user_requests_during_logins": busy["requests"],
        "user_non_2xx_during_logins": busy["non_2xx"],
        "user_p99_under_attack_ms": attacked["p99_ms"],
        "user_requests_under_attack": attacked["requests"],
        "user_non_2xx_under_attack": attacked["non_2xx"],
        "attack_requests_per_second": attack["requests_per_second"],
        "attack_p99_ms": attack["p99_ms"],
        "attack_statuses": statuses,
        "attack_429_share": round(statuses.get("429", 0) / answered, 3),
        "attack_503_share": round(statuses.get("503", 0) / answered, 3),
        "logins_under_password_flood_per_second": flooded_logins["requests_per_second"],
        "logins_under_password_flood_p99_ms": flooded_logins["p99_ms"],
        "logins_under_password_flood": flooded_logins["requests"],
        "logins_under_password_flood_non_2xx": flooded_logins["non_2xx"],
        "password_flood_requests_per_second": flood_result["requests_per_second"],
        "password_flood_statuses": flood_statuses,
    }
    return scenarios, figures
