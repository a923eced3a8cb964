"""An SMS gateway over HTTP: a JSON POST whose field names the deployment configures (gateways
differ); the phones come from the subscription's recipients."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import httpx
from pydantic import Field

from notifications.channels.base import WEB_URL, Answer, Message, StrictConfig


class SmsConfig(StrictConfig):
    url: Annotated[str, WEB_URL]
    phones_field: str = "phones"
    text_field: str = "text"
    extra: dict[str, Any] = Field(default_factory=dict)  # fixed fields: sign name, template id...
    # a gateway answering 200 with its own code: success only when body[ok_field] == ok_value
    ok_field: str | None = None
    ok_value: Any = None


class SmsSecret(StrictConfig):
    token: str = ""  # sent as "Authorization: Bearer ..." when set


class Sms:
    kind: ClassVar[str] = "sms"
    Config: ClassVar = SmsConfig
    Secret: ClassVar = SmsSecret

    async def send(self, config: SmsConfig, secret: SmsSecret, message: Message,
                   recipients: list[str], client: httpx.AsyncClient) -> Answer:
        if not recipients:
            return Answer(False, None, "no phone numbers in the subscription's recipients")
        headers = {"Authorization": f"Bearer {secret.token}"} if secret.token else {}
        body = config.extra | {config.phones_field: recipients, config.text_field: message.text}
        response = await client.post(config.url, json=body, headers=headers)
        ok = 200 <= response.status_code < 300
        if ok and config.ok_field:
            try:
                ok = response.json().get(config.ok_field) == config.ok_value
            except ValueError:
                ok = False
        return Answer(ok, response.status_code, response.text[:2000])
