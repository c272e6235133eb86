"""The API as the scenarios use it: JSON requests to the published ports,
users and their articles, raw sockets for requests in flight, and what
the image should hold (migrations, tables)."""

import json
import re
import socket
import uuid

import conduit_scripts
from stack import ROOT, Failure, check


# Straight to the published ports, whatever proxy the environment names
# (conduit_scripts.http uses none).
def http(method, url, body=None, token=None):
    """(status, JSON body, {} when it is not JSON)."""
    try:
        status, text = conduit_scripts.http(method, url, body, token, timeout=10)
    except OSError as error:
        raise Failure(f"{method} {url} got no answer: {error}") from error
    return status, conduit_scripts.json_or(text, {})


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


def json_or_empty(line):
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def is_json_object(line):
    return bool(json_or_empty(line))
