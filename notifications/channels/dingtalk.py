"""钉钉 group robot with 加签: POST {url}?access_token=T&timestamp=MS&sign=S where S is
base64(HMAC-SHA256(key=secret, msg=f"{MS}\\n{secret}")), url-encoded by the query string.
The answer is {"errcode": 0, "errmsg": "ok"} on success."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Annotated, ClassVar

import httpx

from notifications.channels.base import WEB_URL, Answer, Message, StrictConfig, json_answer


class DingtalkConfig(StrictConfig):
    url: Annotated[str, WEB_URL] = "https://oapi.dingtalk.com/robot/send"


class DingtalkSecret(StrictConfig):
    access_token: str
    secret: str  # the SEC... string of the robot's 加签 setting


def sign(timestamp_ms: int, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Dingtalk:
    kind: ClassVar[str] = "dingtalk"
    Config: ClassVar = DingtalkConfig
    Secret: ClassVar = DingtalkSecret

    async def send(self, config: DingtalkConfig, secret: DingtalkSecret, message: Message,
                   recipients: list[str], client: httpx.AsyncClient) -> Answer:
        now_ms = int(time.time() * 1000)  # the robot refuses a timestamp an hour off
        params = {"access_token": secret.access_token, "timestamp": str(now_ms),
                  "sign": sign(now_ms, secret.secret)}
        body = {"msgtype": "text", "text": {"content": message.text},
                "at": {"atMobiles": recipients, "isAtAll": False}}
        response = await client.post(config.url, params=params, json=body)
        return json_answer(response, "errcode")
