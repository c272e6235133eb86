"""The results as targets met or not, and as the Markdown of
target/bench/results.md and docs/benchmarks.md."""

from settings import ATTACKERS, BOOT_RUNS, CONCURRENCY, CORES, ROOT, SCALE, STRESS_CPUS, THREADS, step


def targets(results):
    def target(name, figure, met, detail):
        return {"target": name, "figure": figure, "met": bool(met), "detail": detail}

    rows = {row["scenario"]: row for row in results["scenarios"]}
    out = []
    user = rows["GET /api/user"]
    out.append(target("GET /api/user >= 70% of pgbench", f"{user['ratio_to_pgbench']:.0%}", user["ratio_to_pgbench"] >= 0.70,
                      f"{user['requests_per_second']:.0f} req/s vs {user['pgbench_tps']:.0f} tps for its {user['statements']} statements"))
    for name in ["GET /api/articles", "GET /api/articles?tag=", "GET /api/articles/feed", "GET /api/articles/{slug}/comments"]:
        row = rows[name]
        out.append(target(f"{name} p99 < 25 ms at c{CONCURRENCY}", f"{row['p99_ms']:.1f} ms", row["p99_ms"] < 25,
                          "default dataset" if SCALE >= 1 else f"scale {SCALE}: below the target's dataset"))
    for row in results["scenarios"]:
        if "contended" not in row:
            continue
        c = row["contended"]
        out.append(target(f"{row['scenario']} under contention: p99 <= 3x quiet, max < 1 s",
                          f"{c['p99_ms']:.1f} vs {row['p99_ms']:.1f} ms, max {c['max_ms']:.0f} ms",
                          c["p99_ms"] <= 3 * row["p99_ms"] and c["max_ms"] < 1000,
                          f"stress-ng --cpu {STRESS_CPUS} during the run"))
    boot = results["boot"]
    out.append(target("boot to /ready, up to date < 15 ms", f"{boot['up_to_date']['median_ms']} ms", boot["up_to_date"]["median_ms"] < 15, f"median of {BOOT_RUNS}"))
    out.append(target("boot to /ready, empty database < 50 ms", f"{boot['empty']['median_ms']} ms", boot["empty"]["median_ms"] < 50, f"median of {BOOT_RUNS}"))
    idle = results["memory_idle_kib"]["peak"] / 1024
    load = results["memory_load_kib"]["peak"] / 1024
    out.append(target("peak RSS idle < 20 MiB", f"{idle:.1f} MiB", idle < 20, "VmHWM after boot"))
    out.append(target("peak RSS under load < 80 MiB", f"{load:.1f} MiB", load < 80, "VmHWM after every scenario"))
    login = results["login"]
    ceiling = CORES / (results["hash"]["median_ms"] / 1000)
    out.append(target("login throughput >= 90% of cores / hash time", f"{login['throughput_per_second'] / ceiling:.0%}",
                      login["throughput_per_second"] >= 0.9 * ceiling,
                      f"{login['throughput_per_second']:.1f}/s vs {CORES} cores / {results['hash']['median_ms']:.1f} ms = {ceiling:.1f}/s; "
                      f"{CORES} threads hashing flat out, no server: {results['hash']['all_cores_per_second']:.1f}/s"))
    out.append(target("GET /api/user p99 during logins <= 2x quiet", f"{login['user_p99_during_logins_ms']:.2f} vs {login['user_p99_quiet_ms']:.2f} ms",
                      login["user_p99_during_logins_ms"] <= 2 * login["user_p99_quiet_ms"],
                      f"4 connections pacing 10 ms; {CONCURRENCY} concurrent logins"))
    out.append(target("GET /api/user p99 under attack <= 2x quiet", f"{login['user_p99_under_attack_ms']:.2f} vs {login['user_p99_quiet_ms']:.2f} ms",
                      login["user_p99_under_attack_ms"] <= 2 * login["user_p99_quiet_ms"],
                      f"4 connections pacing 10 ms; {ATTACKERS} connections registering or failing logins"))
    out.append(target("logins under a password-change flood: no non-2xx",
                      f"{login['logins_under_password_flood_non_2xx']} of {login['logins_under_password_flood']}",
                      login["logins_under_password_flood_non_2xx"] == 0,
                      f"4 connections logging in; one account changing its password from {ATTACKERS} connections "
                      f"({login['password_flood_statuses']})"))
    return out


def waited(run, who):
    """Run-queue wait per request (µs), from `with_sched`, of "postgres",
    "wrk" or the server (every other group); '?' when not measured."""
    sched = run.get("sched")
    if not sched:
        return "?"
    mine = lambda group: group == who if who in ("postgres", "wrk") else group not in ("postgres", "wrk")
    return f"{sum(v['wait_us'] for group, v in sched.items() if mine(group)):.0f}"


def report(r):
    m = r["machine"]
    d = r["dataset"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; PostgreSQL {m['postgresql']}; {m['rustc']}; {m['wrk']}",
        f"Dataset (scale {r['scale']}): {d['users']} users, {d['follows']} follows, {d['articles']} articles, {d['tags']} tags, "
        f"{d['article_tags']} article tags, {d['favorites']} favorites, {d['comments']} comments: {d['rows']} rows in {d['load_seconds']:.1f} s "
        f"({d['rows_per_second']:.0f} rows/s), then VACUUM ANALYZE and CHECKPOINT {d['vacuum_analyze_seconds']:.1f} s",
        f"Load: wrk, {THREADS} threads, {r['concurrency']} connections, {r['warmup_seconds']} s warm-up then {r['seconds']} s; "
        f"pgbench -M prepared at the same concurrency on the SQL each endpoint ran.",
        "",
        "| Scenario | req/s | p50 ms | p99 ms | max ms | non-2xx | SQL statements | pgbench tps | endpoint / pgbench |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["scenarios"]:
        lines.append(
            f"| {row['scenario']} | {row['requests_per_second']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.1f} | "
            f"{row['non_2xx'] + row['socket_errors']} | {row.get('statements', '')} | {row.get('pgbench_tps', '')} | "
            f"{format(row['ratio_to_pgbench'], '.0%') if 'ratio_to_pgbench' in row else ''} |"
        )
    contended = [row for row in r["scenarios"] if "contended" in row]
    if contended:
        lines += [
            "",
            f"Under contention: the same load while `stress-ng --cpu {r.get('stress_cpus', CORES)}` keeps every core busy "
            "(load average at the start of each run in brackets).",
            "",
            "| Scenario | quiet req/s | quiet p50 / p99 / max ms | contended req/s | contended p50 / p99 / max ms | p99 contended / quiet "
            "| waiting for a core per request, µs, quiet / contended: server threads | PostgreSQL | wrk |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in contended:
            c = row["contended"]
            lines.append(
                f"| {row['scenario']} | {row['requests_per_second']:.0f} ({row.get('load_average', '?')}) | "
                f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f} / {row['max_ms']:.1f} | {c['requests_per_second']:.0f} ({c.get('load_average', '?')}) | "
                f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f} / {c['max_ms']:.1f} | {c['p99_ms'] / max(row['p99_ms'], 0.001):.1f}x | "
                + " | ".join(f"{waited(row, who)} / {waited(c, who)}" for who in ("server", "postgres", "wrk")) + " |"
            )
        lines += [
            "",
            "Waiting for a core: the time the threads were runnable but not running (`/proc/<pid>/task/*/schedstat`), "
            "summed over the server's threads, over PostgreSQL's processes or over wrk's threads, divided by the requests of the run.",
        ]
    b = r["boot"]
    login = r["login"]
    lines += [
        "",
        f"Boot to /ready, median of {len(b['empty']['runs_ms'])}: empty database {b['empty']['median_ms']} ms, "
        f"up to date {b['up_to_date']['median_ms']} ms; `conduit migrate run` alone on an empty database {b['migrate_run_empty']['median_ms']} ms.",
        f"Memory: idle RSS {r['memory_idle_kib']['rss'] / 1024:.1f} MiB (peak {r['memory_idle_kib']['peak'] / 1024:.1f} MiB); "
        f"peak under load {r['memory_load_kib']['peak'] / 1024:.1f} MiB.",
        f"Login: one argon2id hash {r['hash']['median_ms']:.1f} ms ({r['hash']['all_cores_per_second']:.1f}/s with every core hashing); "
        f"{login['throughput_per_second']:.1f} logins/s at c{r['concurrency']}; "
        f"GET /api/user p99 {login['user_p99_quiet_ms']:.2f} ms alone, {login['user_p99_during_logins_ms']:.2f} ms while logins run "
        f"({login['throughput_during_mix_per_second']} logins/s meanwhile).",
        f"Under attack ({ATTACKERS} connections registering or logging in with wrong passwords, "
        f"{login['attack_requests_per_second']:.0f} req/s): GET /api/user p99 {login['user_p99_under_attack_ms']:.2f} ms "
        f"({login['user_non_2xx_under_attack']} non-2xx of {login['user_requests_under_attack']}); attackers' answers "
        f"{login['attack_429_share']:.0%} 429, {login['attack_503_share']:.0%} 503 ({login['attack_statuses']}), "
        f"p99 {login['attack_p99_ms']:.1f} ms. "
        f"Under a flood of one account's password changes ({ATTACKERS} connections, "
        f"{login['password_flood_requests_per_second']:.0f} req/s, answers {login['password_flood_statuses']}): "
        f"logins of others {login['logins_under_password_flood_per_second']:.1f}/s, p99 "
        f"{login['logins_under_password_flood_p99_ms']:.1f} ms, {login['logins_under_password_flood_non_2xx']} non-2xx "
        f"of {login['logins_under_password_flood']}.",
        "",
        "| Target | Figure | Met | How |",
        "|---|---:|:---:|---|",
    ]
    for t in r["targets"]:
        lines.append(f"| {t['target']} | {t['figure']} | {'yes' if t['met'] else '**no**'} | {t['detail']} |")
    return "\n".join(lines) + "\n"


def write_docs(markdown):
    docs = ROOT / "docs" / "benchmarks.md"
    text = docs.read_text()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    docs.write_text(f"{head}{begin}\n{markdown}{end}{tail}")
    step(f"updated {docs.relative_to(ROOT)}")
