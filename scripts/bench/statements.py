"""The SQL an endpoint runs, read from the cluster's statement log, and
what pgbench does with the same statements."""

import re
import time

from cluster import cluster_log, psql
from server import http
from settings import CONCURRENCY, OUT, SECONDS, THREADS, die, run


def capture_statements(port, path, token):
    """The SQL one request runs, with its parameters written in as literals,
    read from the cluster's statement log (log_statement = all)."""
    for _ in range(3):  # connections open and statements prepared first
        http(port, "GET", path, token=token)
    log = cluster_log()
    psql("ALTER SYSTEM SET log_statement = 'all'")
    psql("SELECT pg_reload_conf()")
    time.sleep(0.3)
    offset = log.stat().st_size
    status, _ = http(port, "GET", path, token=token)
    time.sleep(0.3)
    psql("ALTER SYSTEM RESET log_statement")
    psql("SELECT pg_reload_conf()")
    if status != 200:
        die(f"GET {path} answered {status} while capturing its SQL")
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return statements_from_log(text)


ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(\d+)\] (\w+):  (.*)$")


def statements_from_log(text):
    entries = []
    for line in text.splitlines():
        match = ENTRY.match(line)
        if match:
            entries.append([match.group(2), match.group(3)])
        elif entries:
            entries[-1][1] += "\n" + line
    statements = []
    for level, message in entries:
        if level == "LOG" and (m := re.match(r"(?:statement|execute [^:]*): (.*)", message, re.S)):
            sql = m.group(1).strip()
            if "pg_reload_conf" in sql or "log_statement" in sql:
                continue
            statements.append(sql)
        elif level == "DETAIL" and message.startswith("parameters: ") and statements:
            params = dict(re.findall(r"\$(\d+) = (NULL|'(?:[^']|'')*')", message))
            statements[-1] = re.sub(r"\$(\d+)\b", lambda p: params.get(p.group(1), p.group(0)), statements[-1])
    return statements


def pgbench_tps(pgbench, url, statements, name):
    script = OUT / f"pgbench-{name}.sql"
    script.write_text("".join(s.rstrip(";") + ";\n" for s in statements))
    output = run([pgbench, "-n", "-M", "prepared", f"-c{CONCURRENCY}", f"-j{THREADS}", f"-T{SECONDS}", "-f", str(script), url]).stdout
    match = re.search(r"tps = ([\d.]+)", output)
    if not match:
        die(f"pgbench printed no tps: {output[-500:]}")
    return float(match.group(1))
