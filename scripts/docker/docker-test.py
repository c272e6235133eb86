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
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import stack  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402
from stack import ENV, IMAGE, PROJECT, Failure, base_images, compose, compose_command, run, say  # noqa: E402


def main():
    stack.COMPOSE = compose_command()
    # A CI time-out's SIGTERM still tears the stack down (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Two runs would share the compose project: the second waits.
    lock = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"{PROJECT}.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    ENV.update(COMPOSE_PROJECT_NAME=PROJECT, CONDUIT_IMAGE=IMAGE, CONDUIT_HTTP_PORT="", CONDUIT_DB_PORT="")
    started = time.monotonic()
    base_images()
    report = {"base_images_s": round(time.monotonic() - started, 1)}
    say(f"building the image with {' '.join(stack.COMPOSE)} (base images ready in {report['base_images_s']} s)")
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
