"""HAProxy in front of the replicas: its configuration, and the state of
each replica as its stats socket tells it."""

import csv
import socket
import time

from context import LB_PORT, OUT, READINESS_DELAY, REPLICA_PORTS, at, die


def haproxy_config():
    servers = "\n".join(
        f"    server r{i + 1} 127.0.0.1:{port} check" for i, port in enumerate(REPLICA_PORTS))
    return f"""global
    stats socket {OUT}/haproxy.sock mode 600 level admin
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # /ready queries the database, behind the requests' pool: on a busy
    # host a check can take longer than the 300 ms between checks, and a
    # check timed out at 300 ms took every replica out at once.
    timeout check 2s
    # The client's address for the login throttle, as docs/deploying.md
    # sets it up (the replicas trust 127.0.0.1).
    option forwardfor
    # A request whose connection failed, or that got no answer at all
    # (a keep-alive connection the replica closed as it stopped), goes
    # to another replica; answered requests are never replayed.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend conduit
    bind 127.0.0.1:{LB_PORT}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
    # Out after two failed checks 300 ms apart: well inside the replicas'
    # {READINESS_DELAY} of 503 before they stop accepting.
    default-server inter 300ms fall 2 rise 2
{servers}
"""


def haproxy_states():
    """{server name: status} from HAProxy's stats socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(str(OUT / "haproxy.sock"))
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    rows = csv.reader(data.decode().lstrip("# ").splitlines())
    header = next(rows)
    states = {}
    for row in rows:
        if len(row) == len(header):
            record = dict(zip(header, row))
            if record["pxname"] == "replicas" and record["svname"] not in ("BACKEND", "FRONTEND"):
                states[record["svname"]] = record["status"]
    return states


def wait_balancer(server, wanted, limit=60):
    at(f"waiting for HAProxy to see {server} {wanted}")
    end = time.monotonic() + limit
    status = ""
    while time.monotonic() < end:
        status = haproxy_states().get(server, "")
        if status.startswith(wanted):
            return
        time.sleep(0.1)
    die(f"HAProxy never saw {server} {wanted} within {limit}s (last status {status!r})",
        [OUT / "haproxy.log"])
