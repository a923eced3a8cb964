"""The 12345 hotline's work-order system as an HTTP JSON API (a real server on a loopback
port): `GET /api/workorders?updated_since=&after_id=&limit=` answers the orders changed after
(updated_since, after_id), in that order, with a bearer token. `fault` makes it answer 500 or
an HTML page, as real ones do during maintenance."""

from __future__ import annotations

import json
import random
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CATEGORIES = ["市容环境", "道路交通", "噪声扰民", "供水供电", "物业管理"]


class Hotline:
    def __init__(self, token: str, orders: int = 100, seed_value: int = 12345) -> None:
        self.token = token
        self.rng = random.Random(seed_value)
        self.lock = threading.Lock()
        self.fault: str | None = None  # None, "500" or "html"
        self.clock = datetime(2026, 1, 1)
        self.orders: dict[int, dict] = {}
        for _ in range(orders):
            self._new()

    def _tick(self) -> str:
        self.clock += timedelta(milliseconds=1)  # strictly growing: each change its own time
        return self.clock.isoformat(sep=" ", timespec="milliseconds")

    def _new(self) -> None:
        oid = len(self.orders) + 1 + max(self.orders, default=0)
        self.orders[oid] = {"id": oid, "title": f"工单{oid}", "category":
                            self.rng.choice(CATEGORIES), "state": "受理", "phone_tail":
                            f"{self.rng.randint(0, 9999):04d}", "updated_at": self._tick()}

    def mutate(self, inserts: int = 3, updates: int = 3) -> None:
        with self.lock:
            for oid in self.rng.sample(sorted(self.orders), min(updates, len(self.orders))):
                self.orders[oid] = {**self.orders[oid], "state": "办结",
                                    "updated_at": self._tick()}
            for _ in range(inserts):
                self._new()

    def page(self, since: str, after_id: int, limit: int) -> list[dict]:
        with self.lock:
            rows = sorted(self.orders.values(), key=lambda o: (o["updated_at"], o["id"]))
        return [o for o in rows if (o["updated_at"], o["id"]) > (since, after_id)][:limit]


def serve(hotline: Hotline, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet: tests read their own output
            return

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if self.headers.get("Authorization") != f"Bearer {hotline.token}":
                return self._send(401, b'{"error": "unauthorized"}', "application/json")
            if hotline.fault == "500":
                return self._send(500, b'{"error": "internal"}', "application/json")
            if hotline.fault == "html":
                return self._send(200, "<html><body>系统维护中</body></html>".encode(),
                                  "text/html; charset=utf-8")
            if url.path != "/api/workorders":
                return self._send(404, b'{"error": "not found"}', "application/json")
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            rows = hotline.page(q.get("updated_since", ""), int(q.get("after_id", 0)),
                                int(q.get("limit", 100)))
            self._send(200, json.dumps({"items": rows}, ensure_ascii=False).encode(),
                       "application/json; charset=utf-8")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
