#!/usr/bin/env python3
"""`make docker-test`: the image and compose.yaml, built and run for real.

Each scenario drives the stack a user gets from `docker compose up`, in a
compose project of its own (`conduit-docker-test`, so a developer's own
stack and volume are never touched), with the host ports left for Docker to
choose. It stops at the first failed check with a sentence saying what was
expected, the state of the containers and the end of their logs.

Where no registry is reachable, the base images are local stand-ins made
by scripts/docker/base-images.sh; DOCKER_TEST_OFFICIAL_IMAGES=1 builds on the
official images instead.
"""

import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "conduit-docker-test"
IMAGE = f"{PROJECT}:latest"
HEALTHY_WITHIN = 90  # seconds; the first boot of a slow machine included
DEMO = {"email": "demo@example.com", "password": "conduit-demo"}


class Failure(Exception):
    """A check that did not hold; its message says what was expected."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def say(message):
    print(f"docker-test: {message}", flush=True)


# --- compose and docker -----------------------------------------------------


def compose_command():
    """`docker compose` (v2) where it exists, else the v1 `docker-compose`."""
    if shutil.which("docker") is None:
        sys.exit("docker-test: docker is missing: install Docker Engine with Compose (Debian: apt-get install docker.io docker-compose).")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        sys.exit("docker-test: the Docker engine is not reachable: start it (systemctl start docker) or check that you may use its socket.")
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    sys.exit("docker-test: Docker Compose is missing: install the compose plugin (or Debian's docker-compose).")


COMPOSE = None
ENV = dict(os.environ)


def run(args, timeout=600, ok=True):
    result = subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    if ok and result.returncode != 0:
        raise Failure(f"`{' '.join(args)}` failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def compose(*args, timeout=600, ok=True):
    return run(COMPOSE + list(args), timeout=timeout, ok=ok)


def containers(service):
    return compose("ps", "-q", service).stdout.split()


def inspect(container, template):
    return run(["docker", "inspect", "-f", template, container]).stdout.strip()


def wait_healthy(service="app", count=1, since=None):
    """Seconds from `since` until `count` containers of the service are healthy."""
    since = since or time.monotonic()
    deadline = since + HEALTHY_WITHIN
    while time.monotonic() < deadline:
        ids = containers(service)
        states = [inspect(c, "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}") for c in ids]
        if len(ids) == count and all(s == "running healthy" for s in states):
            return time.monotonic() - since
        time.sleep(0.05)
    raise Failure(f"{count} {service} container(s) were not healthy within {HEALTHY_WITHIN} s (states: {states})")


def base_url(index=1):
    address = compose("port", "--index", str(index), "app", "8080").stdout.strip()
    check(address, f"app #{index} publishes no port for 8080")
    return "http://" + address.replace("0.0.0.0", "127.0.0.1")


def psql(sql):
    return compose("exec", "-T", "db", "psql", "-U", "conduit", "-d", "conduit", "-AtX", "-c", sql).stdout.split()


# --- the API ------------------------------------------------------------------

# Straight to the published ports, whatever proxy the environment names.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, token=None):
    """(status, JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with OPENER.open(request, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise Failure(f"{method} {url} got no answer: {error}") from error
    try:
        return status, json.loads(text)
    except ValueError:
        return status, {}


def login(url, credentials):
    status, body = http("POST", f"{url}/api/users/login", {"user": credentials})
    check(status == 200, f"login as {credentials['email']} answered {status} {body}, expected 200")
    return body["user"]["token"]


def register(url):
    """A new user: (credentials to log in with, the registration's token)."""
    name = "docker" + uuid.uuid4().hex[:10]
    credentials = {"email": f"{name}@example.org", "password": "docker-test-password"}
    status, body = http("POST", f"{url}/api/users", {"user": {"username": name, **credentials}})
    check(status == 201, f"registration answered {status} {body}, expected 201")
    return credentials, body["user"]["token"]


def register_and_write(url):
    """A new user and one article of theirs: (token, slug)."""
    credentials, token = register(url)
    article = {"article": {"title": f"Written by {credentials['email']}", "description": "d", "body": "b", "tagList": ["docker"]}}
    status, body = http("POST", f"{url}/api/articles", article, token)
    check(status == 201, f"creating an article answered {status} {body}, expected 201")
    return token, body["article"]["slug"]


def assert_still_there(url, token, slug, when):
    status, body = http("GET", f"{url}/api/user", token=token)
    check(status == 200, f"{when}: the session token issued before answered {status} {body}, expected 200")
    status, body = http("GET", f"{url}/api/articles/{slug}")
    check(status == 200, f"{when}: the article written before answered {status}, expected 200")


def newest_migration():
    return sorted(p.name.split("_")[0] for p in (ROOT / "migrations").iterdir() if (p / "up.sql").is_file())


def expected_tables():
    schema = (ROOT / "src" / "schema.rs").read_text()
    tables = set(re.findall(r"^\s*(\w+) \(", schema, re.M))
    check(len(tables) >= 5, f"found only {sorted(tables)} in src/schema.rs: has its format changed?")
    return tables | {"__diesel_schema_migrations"}


# --- scenarios ----------------------------------------------------------------


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


def send_request(url, method, path, body, hold_back=0):
    """A socket with an HTTP request sent on it; with hold_back, all but the
    last bytes of it, and (socket, the bytes held back)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    payload = json.dumps(body).encode()
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
    request = head.encode() + payload
    if hold_back:
        sock.sendall(request[:-hold_back])
        return sock, request[-hold_back:]
    sock.sendall(request)
    return sock


def response_status(sock):
    """The status of the response on the socket, or None if it was cut."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except OSError:
        pass
    sock.close()
    first = received.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 else None


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


def json_or_empty(line):
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def is_json_object(line):
    return bool(json_or_empty(line))


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


def base_images():
    if os.environ.get("DOCKER_TEST_OFFICIAL_IMAGES") == "1":
        return
    made = subprocess.run([str(ROOT / "scripts/docker/base-images.sh")], capture_output=True, text=True)
    sys.stderr.write(made.stderr)
    if made.returncode != 0:
        sys.exit(made.returncode)
    for line in made.stdout.split():
        key, _, value = line.partition("=")
        ENV[key] = value


def main():
    global COMPOSE
    COMPOSE = compose_command()
    # A CI time-out's SIGTERM still tears the stack down (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Two runs would share the compose project: the second waits.
    lock = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"{PROJECT}.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    ENV.update(COMPOSE_PROJECT_NAME=PROJECT, CONDUIT_IMAGE=IMAGE, CONDUIT_HTTP_PORT="", CONDUIT_DB_PORT="")
    started = time.monotonic()
    base_images()
    report = {"base_images_s": round(time.monotonic() - started, 1)}
    say(f"building the image with {' '.join(COMPOSE)} (base images ready in {report['base_images_s']} s)")
    started = time.monotonic()
    # The build stage gets a tag of its own, so that it stays as the cache of
    # the next build while the stages of earlier builds can be pruned.
    build_args = [f"--build-arg={k}={ENV[k]}" for k in ("RUST_IMAGE", "RUNTIME_IMAGE") if ENV.get(k)]
    run(["docker", "build", "--quiet", "--target", "build", "-t", f"{PROJECT}:build", *build_args, "."], timeout=3000)
    compose("build", "app", timeout=3000)
    report["image_build_s"] = round(time.monotonic() - started, 1)
    run(["docker", "image", "prune", "-f", "--filter", "label=conduit.stand-in"], ok=False)
    passed = 0
    try:
        for name, scenario in SCENARIOS:
            started = time.monotonic()
            detail = scenario(report)
            passed += 1
            say(f"ok   {name}: {detail} ({time.monotonic() - started:.1f} s)")
    except Exception as failure:  # any of them: the state below explains it
        say(f"FAIL {name}: {failure!r}" if not isinstance(failure, Failure) else f"FAIL {name}: {failure}")
        print(compose("ps", ok=False).stdout, file=sys.stderr)
        print(compose("logs", "--no-color", "--tail", "40", ok=False).stdout, file=sys.stderr)
    finally:
        compose("down", "-v", "--remove-orphans", ok=False)
    summary = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in report.items() if k != "session"}
    say(f"figures: {json.dumps(summary)}")
    failed = 0 if passed == len(SCENARIOS) else 1
    print(f"docker-test: {passed} passed, {failed} failed, {len(SCENARIOS) - passed - failed} skipped")
    sys.exit(failed)


if __name__ == "__main__":
    main()
