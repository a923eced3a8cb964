"""Request bodies against a real `cityops api` process (issue #22, item 3): refused before
they are read when too large or anonymous, cut while streaming when chunked, and the process's
memory stays where it was."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityops.settings import Settings
from tests.api_kit import bearer
from tests.conftest import Processes, settings_env
from tests.helpers import free_port, port_open, wait_for

MiB = 1024 * 1024
UPLOAD_MAX = 2 * MiB
HUGE = 300 * MiB


@pytest.fixture(scope="module")
def api(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """(port, pid) of an API process with a 2 MiB upload limit."""
    env = settings_env(settings) | {"CITYOPS_UPLOAD_MAX_BYTES": str(UPLOAD_MAX)}
    procs = Processes(tmp_path_factory.mktemp("api-limits"), env)
    port = free_port()
    proc = procs.start("api", "api", "--port", str(port))
    try:
        wait_for(lambda: port_open(port), timeout_s=60, what="the API")
        yield port, proc.pid
    finally:
        procs.stop_all()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in
                                                               headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def complete(answer: bytes) -> bool:
    """The whole answer is in: its head and as many body bytes as it declared."""
    head_part, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head_part.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def exchange(port: int, request_head: bytes, body_bytes: int = 0, chunked: bool = False,
             timeout_s: float = 20.0) -> tuple[int, bytes, int]:
    """Send the head, then up to `body_bytes` of body while nothing is answered; (status,
    answer, body bytes sent before the answer came)."""
    piece = b"x" * (256 * 1024)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request_head)
        sock.setblocking(False)
        sent, answer, pending = 0, b"", b""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not complete(answer):
            writing = sent < body_bytes or bool(pending)
            readable, writable, _ = select.select([sock], [sock] if writing else [], [], 0.2)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            elif writable:
                if not pending:
                    chunk = piece[: min(len(piece), body_bytes - sent)]
                    sent += len(chunk)
                    pending = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked \
                        else chunk
                with contextlib.suppress(BlockingIOError):  # the socket is full: next turn
                    pending = pending[sock.send(pending):]
    assert complete(answer), f"no answer within {timeout_s}s after {sent} body bytes"
    return int(answer.split(b" ", 2)[1]), answer, sent


def test_a_declared_length_over_the_limit_is_413_unread(api, settings: Settings) -> None:
    port, _ = api
    admin = bearer(settings, "admin")
    status, answer, _ = exchange(port, head("POST", "/v1/devices", {
        **admin, "Content-Type": "application/json", "Content-Length": str(HUGE)}))
    assert status == 413 and b'"too_large"' in answer and b"1048576" in answer
    # an upload route has its own, larger limit (CITYOPS_UPLOAD_MAX_BYTES)
    status, answer, _ = exchange(port, head("POST", "/v1/devices/import", {
        **admin, "Content-Type": "text/csv", "Content-Length": str(UPLOAD_MAX + MiB)}))
    assert status == 413 and str(UPLOAD_MAX + 64 * 1024).encode() in answer
    staff = bearer(settings, "department_staff")
    status, _, _ = exchange(port, head("POST", "/v1/economy/imports", {
        **staff, "Content-Type": "multipart/form-data; boundary=x",
        "Content-Length": str(UPLOAD_MAX + MiB)}))
    assert status == 413
    # a public route with a body is limited too
    status, _, _ = exchange(port, head("POST", "/v1/auth/token", {
        "Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(HUGE)}))
    assert status == 413


def test_an_upload_under_its_limit_is_read(api, settings: Settings) -> None:
    """1.5 MiB is over the JSON limit but under the upload limit: read, and judged as CSV."""
    port, _ = api
    status, answer, sent = exchange(port, head("POST", "/v1/devices/import", {
        **bearer(settings, "admin"), "Content-Type": "text/csv",
        "Content-Length": str(3 * MiB // 2)}), body_bytes=3 * MiB // 2)
    assert sent == 3 * MiB // 2
    assert status == 422 and b"invalid_input" in answer, answer[:300]


def test_anonymous_bodies_get_401_before_they_are_read(api, settings: Settings) -> None:
    port, _ = api
    for auth in ({}, {"Authorization": "Bearer not-a-jwt"}, {"X-API-Key": "cok_unknown"}):
        status, answer, sent = exchange(port, head("POST", "/v1/devices", {
            **auth, "Content-Type": "application/json", "Content-Length": str(HUGE)}),
            body_bytes=HUGE)
        assert status == 401 and b'"unauthenticated"' in answer, answer[:300]
        assert b"www-authenticate: bearer" in answer.lower()
        assert sent < 16 * MiB, f"the API read {sent} bytes before refusing"
    status, _, sent = exchange(port, head("POST", "/v1/devices/import", {
        "Content-Type": "text/csv", "Transfer-Encoding": "chunked"}), HUGE, chunked=True)
    assert status == 401 and sent < 16 * MiB


def test_chunked_bodies_are_cut_at_the_limit_and_memory_stays_bounded(
        api, settings: Settings) -> None:
    port, pid = api
    admin = bearer(settings, "admin")
    before = rss_bytes(pid)
    for path, kind in (("/v1/devices", "application/json"), ("/v1/devices/import", "text/csv")):
        status, answer, sent = exchange(port, head("POST", path, {
            **admin, "Content-Type": kind, "Transfer-Encoding": "chunked"}), 96 * MiB,
            chunked=True)
        assert status == 413 and b'"too_large"' in answer, answer[:300]
        assert sent < 48 * MiB, f"{path}: the API read {sent} bytes before cutting"
    grown = rss_bytes(pid) - before
    assert grown < 40 * MiB, f"the API grew by {grown / MiB:.0f} MiB"
