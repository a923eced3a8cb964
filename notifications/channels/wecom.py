"""企业微信 group robot: POST {url}?key=KEY with a text message; mobiles are @-mentioned.
The answer is {"errcode": 0, "errmsg": "ok"} on success."""

from __future__ import annotations

from typing import Annotated, ClassVar

import httpx

from notifications.channels.base import WEB_URL, Answer, Message, StrictConfig, json_answer


class WecomConfig(StrictConfig):
    url: Annotated[str, WEB_URL] = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"


class WecomSecret(StrictConfig):
    key: str


class Wecom:
    kind: ClassVar[str] = "wecom"
    Config: ClassVar = WecomConfig
    Secret: ClassVar = WecomSecret

    async def send(self, config: WecomConfig, secret: WecomSecret, message: Message,
                   recipients: list[str], client: httpx.AsyncClient) -> Answer:
        body = {"msgtype": "text",
                "text": {"content": message.text, "mentioned_mobile_list": recipients}}
        response = await client.post(config.url, params={"key": secret.key}, json=body)
        return json_answer(response, "errcode")
