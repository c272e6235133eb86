"""What the driver scripts share (scripts/bench/bench.py,
scripts/docker/docker-test.py, scripts/topology/topology-test.py): HTTP
requests, psql, running and stopping processes, and ending a run with a
sentence. Standard library only. A script imports it by its path:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
    import conduit_scripts
"""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

# --- ending a run ---------------------------------------------------------------


def die(prefix, message):
    """Ends the run: `prefix: message` on stderr, exit status 1."""
    print(f"{prefix}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


# --- processes --------------------------------------------------------------------


class CommandFailed(subprocess.CalledProcessError):
    """A command that exited non-zero; its message ends with the last lines
    of what it printed on stderr."""

    def __str__(self):
        detail = (self.stderr or "").strip().splitlines()[-5:]
        return f"{' '.join(map(str, self.cmd))} failed ({self.returncode}): " + " / ".join(detail)


def environment(extra=None, drop=()):
    """This process's environment without `drop`, with `extra` on top."""
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **(extra or {})}


def run(args, env=None, cwd=None, capture=True, check=True, timeout=None):
    """Runs `args` to its end, as text. capture: its stdout and stderr are
    kept on the result (else they go to this process's). `env` is the whole
    environment (None: this one). With check, a non-zero exit raises
    CommandFailed."""
    pipe = subprocess.PIPE if capture else None
    result = subprocess.run(args, env=env, cwd=cwd, text=True, stdout=pipe, stderr=pipe, timeout=timeout)
    if check and result.returncode != 0:
        raise CommandFailed(result.returncode, args, result.stdout, result.stderr)
    return result


def stop(process, timeout=15, sig=signal.SIGTERM):
    """Signals a process still running (SIGTERM), gives it `timeout` seconds
    to exit, then kills it. Its exit status."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


# --- psql -------------------------------------------------------------------------


def psql_args(sql, url=None):
    """psql's arguments for one statement: no psqlrc, unaligned tuples only,
    quiet, stopping at the first error; `url` first when given."""
    return ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", *([url] if url else []), "-c", sql]


def psql(sql, url, env=None, cwd=None):
    """One statement through psql on `url`: its output, stripped. A failure
    raises CommandFailed."""
    return run(["psql", *psql_args(sql, url)], env=env, cwd=cwd).stdout.strip()


# --- HTTP -------------------------------------------------------------------------

# Straight to the address given, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, token=None, timeout=10):
    """One request on a connection of its own: (status, body as bytes).
    `body` is sent as JSON, `token` as `Authorization: Token`. Every answer
    is returned, 4xx and 5xx included; no answer at all raises OSError
    (urllib's URLError and timeouts are OSErrors)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def json_or(raw, default):
    """`raw` parsed as JSON, or `default` when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return default
