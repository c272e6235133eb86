"""The release binary as the bench runs it: started on a free port, ready
when /ready answers 200, its memory, stopped; and the requests bench.py
sends it itself (logins, registrations)."""

import json
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import conduit_scripts
import settings
from settings import PASSWORD, die


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=None, token=None, timeout=5.0):
    """One request on a new connection: (status, body as text)."""
    status, raw = conduit_scripts.http(method, f"http://127.0.0.1:{port}{path}", body, token, timeout)
    return status, raw.decode(errors="replace")


def ready_status(port):
    """The first bytes of /ready's answer, b"" when none. A raw socket: boot
    is timed by polling this every 0.5 ms, where a client library's own
    cost would be most of what is measured."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(16)
    except OSError:
        return b""


class Server:
    """The release binary serving `url` on a free port, logging to a file."""

    def __init__(self, url, extra_env=None):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="conduit-bench-", suffix=".log", delete=False)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CONDUIT_LISTEN": f"127.0.0.1:{self.port}",
            "CONDUIT_LOG_FORMAT": "json",
            "RUST_LOG": "info",
            **(extra_env or {}),
        }
        self.started = time.perf_counter()
        self.process = subprocess.Popen([str(settings.BIN / "conduit"), "serve"], env=env, stdout=self.log, stderr=self.log)

    def wait_ready(self, timeout=60.0):
        """Seconds from exec to the first 200 from /ready, polled every 0.5 ms."""
        while True:
            if ready_status(self.port).startswith(b"HTTP/1.1 200"):
                return time.perf_counter() - self.started
            if self.process.poll() is not None:
                die(f"the server exited during boot; its log: {Path(self.log.name).read_text()[-2000:]}")
            if time.perf_counter() - self.started > timeout:
                die("the server was not ready within a minute")
            time.sleep(0.0005)

    def memory_kib(self):
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
        return {"rss": int(fields["VmRSS"]), "peak": int(fields["VmHWM"])}

    def stop(self):
        conduit_scripts.stop(self.process, timeout=30)
        os.unlink(self.log.name)


def login(port, email):
    status, body = http(port, "POST", "/api/users/login", {"user": {"email": email, "password": PASSWORD}})
    if status != 200:
        die(f"login of {email} answered {status}: {body[:200]}")
    return json.loads(body)["user"]["token"]


def register(port, name):
    status, body = http(port, "POST", "/api/users",
                        {"user": {"username": name, "email": f"{name}@bench.conduit.example", "password": PASSWORD}})
    if status != 201:
        die(f"registration of {name} answered {status}: {body[:200]}")
    return json.loads(body)["user"]["token"]
