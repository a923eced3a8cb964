"""Local stand-ins for the providers, on free loopback ports: an HTTP receiver that checks each
group robot's body format and signature the way the provider documents them (and answers as
the provider does), an SMS gateway that fails its first calls, and a real SMTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller

from tests.helpers import free_port

WECOM_KEY, DING_TOKEN, DING_SECRET = "wk-123", "dt-456", "SECdingsecret"
FEISHU_TOKEN, FEISHU_SECRET, SMS_TOKEN = "fs-789", "feishusecret", "sms-token"


def _b64_hmac(key: bytes, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


def _wecom(query: dict, body: dict) -> tuple[bool, dict]:
    ok = (query.get("key") == [WECOM_KEY] and body.get("msgtype") == "text"
          and isinstance(body.get("text", {}).get("content"), str))
    return ok, {"errcode": 0, "errmsg": "ok"} if ok else {"errcode": 93000, "errmsg": "invalid"}


def _dingtalk(query: dict, body: dict) -> tuple[bool, dict]:
    ts = query.get("timestamp", ["0"])[0]
    fresh = abs(int(ts) - time.time() * 1000) < 3_600_000
    expected = _b64_hmac(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode())
    ok = (query.get("access_token") == [DING_TOKEN] and fresh
          and query.get("sign") == [expected] and body.get("msgtype") == "text"
          and isinstance(body.get("text", {}).get("content"), str))
    return ok, ({"errcode": 0, "errmsg": "ok"} if ok
                else {"errcode": 310000, "errmsg": "sign not match"})


def _feishu(path: str, body: dict) -> tuple[bool, dict]:
    ts = body.get("timestamp", "0")
    fresh = abs(int(ts) - time.time()) < 3600
    expected = _b64_hmac(f"{ts}\n{FEISHU_SECRET}".encode(), b"")
    ok = (path.endswith("/" + FEISHU_TOKEN) and fresh and body.get("sign") == expected
          and body.get("msg_type") == "text" and isinstance(body["content"].get("text"), str))
    return ok, ({"code": 0, "msg": "success", "data": {}} if ok
                else {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})


class Receiver:
    """Every request kept as (path, query, body, accepted); the SMS gateway answers 500 to its
    first `sms_failures` calls."""

    def __init__(self, sms_failures: int = 1) -> None:
        self.requests: list[tuple[str, dict, dict, bool]] = []
        self.sms_failures = sms_failures
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _answer(self, path: str, query: dict, headers, body: dict) -> tuple[int, dict]:
        if path.startswith("/wecom"):
            ok, answer = _wecom(query, body)
        elif path.startswith("/dingtalk"):
            ok, answer = _dingtalk(query, body)
        elif path.startswith("/feishu"):
            ok, answer = _feishu(path, body)
        else:
            if self.sms_failures > 0:
                self.sms_failures -= 1
                self.requests.append((path, query, body, False))
                return 500, {"code": "BUSY", "message": "gateway busy"}
            ok = (headers.get("Authorization") == f"Bearer {SMS_TOKEN}"
                  and isinstance(body.get("mobiles"), list) and "content" in body)
            answer = {"code": "OK" if ok else "DENIED"}
        self.requests.append((path, query, body, ok))
        return 200, answer

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                url = urlparse(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = receiver._answer(url.path, parse_qs(url.query), self.headers,
                                                  json.loads(raw))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd's handler: every message received, parsed."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        mail = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.rcpt_tos, mail))
        return "250 Message accepted for delivery"


def smtp_server() -> tuple[Controller, Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, box
