"""飞书 group robot with 签名校验: POST {url}/{token} with "timestamp" (seconds) and "sign" in
the body, sign = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")). The answer is
{"code": 0, "msg": "success"} on success (older robots: "StatusCode": 0)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Annotated, ClassVar

import httpx

from notifications.channels.base import WEB_URL, Answer, Message, StrictConfig


class FeishuConfig(StrictConfig):
    url: Annotated[str, WEB_URL] = "https://open.feishu.cn/open-apis/bot/v2/hook"


class FeishuSecret(StrictConfig):
    token: str  # the last part of the webhook address
    secret: str = ""  # empty: the robot has no 签名校验


def sign(timestamp_s: int, secret: str) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Feishu:
    kind: ClassVar[str] = "feishu"
    Config: ClassVar = FeishuConfig
    Secret: ClassVar = FeishuSecret

    async def send(self, config: FeishuConfig, secret: FeishuSecret, message: Message,
                   recipients: list[str], client: httpx.AsyncClient) -> Answer:
        body: dict = {"msg_type": "text", "content": {"text": message.text}}
        if secret.secret:
            now_s = int(time.time())
            body |= {"timestamp": str(now_s), "sign": sign(now_s, secret.secret)}
        response = await client.post(f"{config.url.rstrip('/')}/{secret.token}", json=body)
        text = response.text[:2000]
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        code = answer.get("code", answer.get("StatusCode"))
        return Answer(response.status_code == 200 and code == 0, response.status_code, text)
