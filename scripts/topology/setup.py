"""Before the scenarios: the tools (installed when root and missing), the
RealWorld suite's runner, and ports that are free and outside the
kernel's ephemeral range."""

import os
import shutil
import socket
from pathlib import Path

from context import BASE, BOUNCER_PORT, LB_PORT, PORTS, REPLICA_PORTS, ROOT, at, die, log, run, sockets_on


def ephemeral_range():
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def check_ports():
    """The ports must be free now, and outside the ephemeral range, where
    any outgoing connection may hold one when a replica comes to bind it."""
    at("checking the ports")
    ephemeral = ephemeral_range()
    if ephemeral and PORTS.start <= ephemeral[1] and ephemeral[0] <= PORTS.stop - 1:
        log(f"WARNING: ports {PORTS.start}-{PORTS.stop - 1} overlap the kernel's ephemeral range "
            f"{ephemeral[0]}-{ephemeral[1]} (net.ipv4.ip_local_port_range): any outgoing connection "
            "can hold one of them, and a replica then fails to bind it; set TOPOLOGY_PORT_BASE "
            "outside that range")
    # PostgreSQL's port is dev-db.sh's to check: a cluster left running
    # by an interrupted run is reused.
    for port in (LB_PORT, BOUNCER_PORT, *REPLICA_PORTS, *range(BASE + 20, BASE + 23)):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as error:
                die(f"port {port} is taken ({error}); the sockets on it:\n{sockets_on(port)}\n"
                    "set TOPOLOGY_PORT_BASE to a free range of 30 ports")


def ensure_tools():
    missing = [t for t in ("haproxy", "pgbouncer", "wrk") if shutil.which(t) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        die(f"missing {', '.join(missing)}: install them (Debian: apt-get install {' '.join(missing)})")
    log(f"installing {', '.join(missing)} from the distribution")
    run(["apt-get", "update", "-qq"])
    run(["apt-get", "install", "-y", "-qq", *missing],
        env={"DEBIAN_FRONTEND": "noninteractive"})


def ensure_hurl():
    """The RealWorld suite's runner, for the suite through PgBouncer."""
    run([str(ROOT / "scripts" / "ensure-hurl.sh")])
    os.environ["PATH"] = f"{Path.home() / '.cargo' / 'bin'}:{os.environ['PATH']}"
