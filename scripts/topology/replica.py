"""A replica: the debug binary serving on a port of the range, logging to
target/topology/, waited for, signalled and stopped."""

import os
import signal
import subprocess
import time

import context as ctx
from context import BIN, OUT, READINESS_DELAY, at, die, http, sockets_on, started


class Replica:
    def __init__(self, port, migrations_dir=None, database_url=None, name=None,
                 pool_mode="session", pool_size=8):
        self.port = port
        self.name = name or f"replica-{port}"
        self.log_path = OUT / f"{self.name}.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CONDUIT_") and k != "DATABASE_URL"}
        env.update({
            "DATABASE_URL": database_url or ctx.DB_URL,
            "CONDUIT_MIGRATION_DATABASE_URL": ctx.DB_URL,
            "CONDUIT_LISTEN": f"127.0.0.1:{port}",
            "CONDUIT_LOG_FORMAT": "json",
            "CONDUIT_SHUTDOWN_READINESS_DELAY": READINESS_DELAY,
            "CONDUIT_DB_POOL_SIZE": str(pool_size),
            "CONDUIT_DB_POOL_MODE": pool_mode,
            "CONDUIT_TRUSTED_PROXIES": "127.0.0.1/32",
            # Per-request log lines cost a fifth of the throughput.
            "RUST_LOG": "warn,conduit=info",
        })
        args = [str(BIN), "serve"]
        if migrations_dir:
            args += ["--migrations-dir", str(migrations_dir)]
        self.log_file = open(self.log_path, "a")
        self.process = subprocess.Popen(args, env=env, stdout=self.log_file,
                                        stderr=subprocess.STDOUT, cwd=OUT)
        started.append(self.process)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, limit=90, path="/ready"):
        at(f"waiting for {self.name} to answer {path} with 200")
        end = time.monotonic() + limit
        last = None
        while time.monotonic() < end:
            if self.process.poll() is not None:
                held = ""
                if "Address already in use" in self.log_text():
                    held = f"; what holds port {self.port} now:\n{sockets_on(self.port)}"
                die(f"{self.name} exited with {self.process.returncode} before it was ready{held}",
                    [self.log_path])
            status, body = http("GET", self.url(path), timeout=2)
            if status == 200:
                return
            last = (status, body)
            time.sleep(0.1)
        die(f"{self.name} not ready within {limit}s; its last {path} answered {last}",
            [self.log_path])

    def signal(self, sig):
        self.process.send_signal(sig)

    def wait_exit(self, limit=60):
        at(f"waiting for {self.name} to exit")
        try:
            return self.process.wait(limit)
        except subprocess.TimeoutExpired:
            die(f"{self.name} did not exit within {limit}s", [self.log_path])

    def stop(self):
        """SIGTERM, then the exit, which must be clean: a replica that
        fails to stop is a defect of its own, whatever the load saw."""
        self.signal(signal.SIGTERM)
        code = self.wait_exit()
        if code != 0:
            die(f"{self.name} exited with {code} after SIGTERM (0 expected)", [self.log_path])

    def log_text(self):
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")
