"""The compose stack under test: its project, image and settings, docker
and compose commands, waiting for healthy containers, psql in the
database container, and the failure a check raises."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import conduit_scripts


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
        conduit_scripts.die("docker-test", "docker is missing: install Docker Engine with Compose (Debian: apt-get install docker.io docker-compose).")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        conduit_scripts.die("docker-test", "the Docker engine is not reachable: start it (systemctl start docker) or check that you may use its socket.")
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    conduit_scripts.die("docker-test", "Docker Compose is missing: install the compose plugin (or Debian's docker-compose).")


# `compose_command()`, once main has checked that Docker and Compose are there.
COMPOSE = None
ENV = dict(os.environ)


def run(args, timeout=600, ok=True):
    try:
        return conduit_scripts.run(args, env=ENV, cwd=ROOT, timeout=timeout, check=ok)
    except conduit_scripts.CommandFailed as failed:
        raise Failure(f"`{' '.join(args)}` failed ({failed.returncode}):\n{failed.stdout}{failed.stderr}") from None


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
    return compose("exec", "-T", "db", "psql", "-U", "conduit", "-d", "conduit", *conduit_scripts.psql_args(sql)).stdout.split()


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
