"""The scenarios, in the order they run: each drives the stack, checks what
a user would see and returns a sentence of what it found."""

import select
import subprocess
import time

from api import (
    assert_still_there, expected_tables, http, is_json_object, json_or_empty, login, newest_migration, register,
    register_and_write, response_status, send_request,
)
from stack import DEMO, IMAGE, ROOT, base_url, check, compose, containers, inspect, psql, run, wait_healthy


def from_nothing(report):
    compose("down", "-v", "--remove-orphans")
    started = time.monotonic()
    compose("up", "-d")
    report["healthy_from_empty_volume_s"] = wait_healthy(since=started)
    url = base_url()
    status, ready = http("GET", f"{url}/ready")
    versions = newest_migration()
    check(status == 200 and ready.get("schema_version") == versions[-1] and ready.get("pending_migrations") == [],
          f"/ready answered {status} {ready}, expected schema_version {versions[-1]} and nothing pending")
    tables = set(psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    missing = expected_tables() - tables
    check(not missing, f"tables missing after the first boot: {sorted(missing)}")
    token = login(url, DEMO)
    status, body = http("GET", f"{url}/api/articles")
    titles = [a.get("title") for a in body.get("articles", [])]
    check(status == 200 and "Welcome to Conduit" in titles, f"GET /api/articles answered {status} {titles}, expected the welcome article")
    status, _ = http("GET", f"{url}/api/user", token=token)
    check(status == 200, f"the demo user's token answered {status} on GET /api/user")
    return f"healthy in {report['healthy_from_empty_volume_s']:.2f} s; /ready at {versions[-1]}, none pending; {len(tables)} tables; demo logged in; welcome article listed"


def the_image(report):
    app = containers("app")[0]
    user = inspect(IMAGE, "{{.Config.User}}")
    uid = run(["docker", "exec", app, "id", "-u"]).stdout.strip()
    check(user.split(":")[0] not in ("", "0", "root") and uid != "0", f"the image runs as user {user!r} (uid {uid}), expected a non-root user")
    size = int(inspect(IMAGE, "{{.Size}}"))
    report["image_size_mb"] = round(size / 1e6, 1)
    health = inspect(IMAGE, "{{json .Config.Healthcheck.Test}}")
    check("healthcheck" in health, f"the image's HEALTHCHECK is {health}, expected conduit healthcheck")
    return f"runs as {user} (uid {uid} in the container); {report['image_size_mb']} MB; HEALTHCHECK {health}"


def migration_cli(report):
    result = compose("run", "--rm", "--no-deps", "app", "conduit", "migrate", "status")
    lines = result.stdout.strip().splitlines()
    names = sorted(p.name for p in (ROOT / "migrations").iterdir() if (p / "up.sql").is_file())
    for name in names:
        check(f"applied  {name}" in lines, f"`conduit migrate status` did not list {name} as applied:\n{result.stdout}")
    check(lines and lines[-1].endswith(", 0 pending"), f"`conduit migrate status` ended with {lines[-1:]}, expected 0 pending")
    return lines[-1]


def restarts_keep_data(report):
    url = base_url()
    token, slug = register_and_write(url)
    compose("restart", "app")
    wait_healthy()
    url = base_url()
    assert_still_there(url, token, slug, "after `restart app`")
    compose("down")
    started = time.monotonic()
    compose("up", "-d")
    report["healthy_from_existing_volume_s"] = wait_healthy(since=started)
    assert_still_there(base_url(), token, slug, "after `down` and `up`")
    report["session"] = (token, slug)
    return f"token and article kept across restart and down/up; healthy again in {report['healthy_from_existing_volume_s']:.2f} s"


def database_outage(report):
    url = base_url()
    app = containers("app")[0]
    started_at = inspect(app, "{{.State.StartedAt}}")
    compose("stop", "db")
    status, body = http("GET", f"{url}/api/articles")
    check(status == 503 and "database" in body.get("errors", {}),
          f"with the database stopped GET /api/articles answered {status} {body}, expected 503 with errors.database")
    status, _ = http("GET", f"{url}/ready")
    check(status == 503, f"with the database stopped /ready answered {status}, expected 503")
    compose("start", "db")
    deadline = time.monotonic() + 30
    while (status := http("GET", f"{url}/api/articles")[0]) != 200:
        check(time.monotonic() < deadline, f"GET /api/articles still answered {status} 30 s after the database came back")
        time.sleep(0.2)
    check(inspect(app, "{{.State.StartedAt}}") == started_at and inspect(app, "{{.RestartCount}}") == "0",
          "the app container was restarted during the outage; it should have ridden it out")
    return "503 (errors.database) and /ready 503 while stopped; 200 again after start, same container"


def graceful_stop(report):
    app = containers("app")[0]
    grace = 20
    url = base_url()
    # A burst of logins (each hashes a password, two at a time), one per
    # account since an account's logins in flight count against its
    # throttle, and one whose body is only half sent: it is in flight
    # whatever the timing.
    accounts = [register(url)[0] for _ in range(8)]
    sockets = [send_request(url, "POST", "/api/users/login", {"user": account}) for account in accounts]
    half_sent, rest = send_request(url, "POST", "/api/users/login", {"user": DEMO}, hold_back=10)
    sockets.append(half_sent)
    time.sleep(0.2)
    in_flight = len(sockets) - len(select.select(sockets, [], [], 0)[0])
    started = time.monotonic()
    # What `docker compose stop app` does, without its start-up delay.
    stop = subprocess.Popen(["docker", "stop", "--time", "25", app], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    half_sent.sendall(rest)
    statuses = [response_status(sock) for sock in sockets]
    stop.wait(timeout=60)
    took = time.monotonic() - started
    code = inspect(app, "{{.State.ExitCode}}")
    check(code == "0", f"stop (SIGTERM) left exit code {code}, expected 0")
    check(took < grace, f"stop took {took:.1f} s, longer than the {grace} s drain time")
    check(in_flight > 0, "the burst of logins was answered before the signal: nothing was in flight to drain")
    check(statuses == [200] * len(sockets), f"logins sent before SIGTERM ({in_flight} still unanswered then) got {statuses}, expected 200 each")
    logs = run(["docker", "logs", app])
    lines = [line for line in (logs.stdout + logs.stderr).splitlines() if line.strip()]
    not_json = [line for line in lines if not is_json_object(line)]
    check(lines and not not_json, f"log lines that are not JSON: {not_json[:3]}")
    compose("start", "app")
    wait_healthy()
    return f"{in_flight} logins in flight at SIGTERM, all 200; exit 0 in {took:.2f} s; {len(lines)} log lines, all JSON"


def clean_start_leaves_only_seed(report):
    token, slug = report["session"]
    compose("down", "-v")
    compose("up", "-d")
    wait_healthy()
    url = base_url()
    counts = psql("SELECT (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM articles)")
    check(counts == ["1", "1"], f"after `down -v` and `up` users and articles are {counts}, expected only the demo user and the welcome article")
    status, _ = http("GET", f"{url}/api/articles/{slug}")
    check(status == 404, f"the article written before `down -v` answered {status}, expected 404")
    status, _ = http("GET", f"{url}/api/user", token=token)
    check(status == 401, f"the token issued before `down -v` answered {status}, expected 401")
    return "only the demo user and the welcome article; old token 401, old article 404"


def app_before_database(report):
    compose("down", "-v")
    compose("up", "-d", "--no-deps", "app")
    time.sleep(3)
    app = containers("app")[0]
    state = inspect(app, "{{.State.Status}} {{.State.Health.Status}}")
    check(state.startswith("running") and not state.endswith(" healthy"),
          f"with no database the app is {state!r}, expected running and not yet healthy")
    started = time.monotonic()
    compose("up", "-d", "db")
    waited = wait_healthy(since=started)
    logs = run(["docker", "logs", app])
    check("database not reachable yet" in logs.stdout + logs.stderr, "the app's logs do not say it was waiting for the database")
    check(inspect(app, "{{.RestartCount}}") == "0", "the app restarted instead of waiting for the database")
    status, _ = http("GET", f"{base_url()}/api/articles")
    check(status == 200, f"GET /api/articles answered {status} once the database came, expected 200")
    return f"waited, same container; healthy {waited:.2f} s after the database was started"


def three_replicas(report):
    compose("down", "-v")
    started = time.monotonic()
    compose("up", "-d", "--scale", "app=3")
    took = wait_healthy(count=3, since=started)
    versions = psql("SELECT version FROM __diesel_schema_migrations ORDER BY version")
    check(versions == newest_migration(), f"the migrations table holds {versions}, expected {newest_migration()}")
    applied = []
    for app in containers("app"):
        check(inspect(app, "{{.RestartCount}}") == "0", "a replica restarted: the three did not take turns through the migration lock")
        logs = run(["docker", "logs", app])
        applied += [e["migration"] for e in map(json_or_empty, logs.stdout.splitlines()) if e.get("message", "").startswith("applied migration")]
    names = sorted(p.name for p in (ROOT / "migrations").iterdir() if (p / "up.sql").is_file())
    check(sorted(applied) == names, f"the replicas logged these migrations as applied: {sorted(applied)}; expected each of {names} once")
    seed = psql("SELECT (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM articles)")
    check(seed == ["1", "1"], f"users and articles after three boots: {seed}, expected the seed once")
    for index in (1, 2, 3):
        status, _ = http("GET", f"{base_url(index)}/ready")
        check(status == 200, f"replica {index} answered /ready with {status}")
    return f"3 healthy in {took:.2f} s, none restarted; each migration applied once, by one replica"


SCENARIOS = [
    ("from nothing: down -v, up", from_nothing),
    ("the image", the_image),
    ("migration CLI in the image", migration_cli),
    ("restart app, down and up keep the data", restarts_keep_data),
    ("database stopped while the app runs", database_outage),
    ("SIGTERM drains requests in flight and exits 0; JSON logs", graceful_stop),
    ("down -v, up: only the seed remains", clean_start_leaves_only_seed),
    ("app started before the database", app_before_database),
    ("three replicas on an empty volume", three_replicas),
]
